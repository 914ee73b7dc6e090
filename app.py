"""avdemo's entry point (also the Hugging Face Space's `app_file`): build the UI and serve it."""

from avdemo.lab.ui import build_app, launch

demo = build_app()

if __name__ == "__main__":
    launch(demo)
