"""Chat models, shared by agents and (next) judges: model specs (`offline`, `openai:<name>`), the built-in offline
model, and the argument sampler it uses."""
