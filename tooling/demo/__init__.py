"""The demo: its data (``data``) and the run that drives the whole pipeline (``herald demo``)."""
