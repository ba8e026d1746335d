"""What a physicist reads about a scan: ``status`` (every job's state from its files) and ``summary``
(the report's landing page)."""
