"""Where the pipeline keeps things: the Parquet lake, its own state file, the SQL runner and the publisher."""
