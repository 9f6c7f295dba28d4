"""One module per source; each knows one source's delivery and hands on its rows as delivered."""
