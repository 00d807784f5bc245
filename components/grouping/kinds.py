"""tf.Example value kinds and the two ways the grouping reads a column (no TensorFlow here)."""
FLOAT, INT, BYTES = "float", "int", "bytes"      # float_list / int64_list / bytes_list
NUMERIC, CATEGORICAL = "numeric", "categorical"  # read as float64 / as text
