"""Examples of user code that plugs into slidescan (a LightningModule for the ``lightning`` backend, a method)."""
