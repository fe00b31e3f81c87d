"""Domain logic without HTTP: the API, the pages and the CLI all call these."""
