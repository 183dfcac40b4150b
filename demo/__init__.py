"""The Gradio Space: prompt, automatic, Detectron2 and compare tabs on the shared model loaders (see ui.build_app)."""
