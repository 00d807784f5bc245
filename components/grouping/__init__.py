"""Grouping component: fits K-Means or a-priori groups on train and annotates every split."""
