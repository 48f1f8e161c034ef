"""latentlapse compare: two or more reports of one probe set, aligned, side by side, in step."""
