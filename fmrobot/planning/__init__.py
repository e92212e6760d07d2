"""Planning: instruction + scene -> a typed plan of skill calls (or a request for help)."""
