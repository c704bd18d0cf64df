"""The facevlm gateway: FastAPI app (app.create_app), its recipe (config.ServeConfig), safe image decoding."""
