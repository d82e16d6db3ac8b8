"""mixmerge: mix or merge? multi-domain RLVR as one reproducible grid."""
