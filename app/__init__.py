"""appstack reference service: the small HTTP app the stack deploys (see `app.server`)."""
