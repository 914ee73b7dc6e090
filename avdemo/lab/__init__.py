"""The lab a person uses: one run without UI (`analysis`), what it looks like (`views`) and the
Gradio page over them (`ui`)."""
