"""Facts about AWS and models that config validation and the capacity planner rely on."""
