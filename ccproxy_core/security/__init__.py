"""Guards in front of every route: the auth token, other web pages, browser preflights."""
