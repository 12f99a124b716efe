"""Recording a run into a Zarr store: the timeline, the store, the shed counter and the recorder
callback."""
