"""Online serving: the multi-model endpoint container (``bqx serve``), its model store, request
validation, the online feature engine and the prediction log."""
