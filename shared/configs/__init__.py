"""One module of model configs per model family; `shared.config` registers them all."""
