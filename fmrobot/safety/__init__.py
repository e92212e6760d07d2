"""Safety: shields that reject or repair plans before anything moves."""
