"""Scale benchmark: the whole pipeline vs TFX's stock chicago-taxi pipeline at equal row counts."""
