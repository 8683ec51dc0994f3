"""The shipped model files (NAME.pt); see the model card in the README."""
