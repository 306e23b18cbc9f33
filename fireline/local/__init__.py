"""Local stand-ins for what Fireline talks to (AWS via moto, a Slack-compatible server).

Used by `fireline demo` and the tests; everything binds to 127.0.0.1 and reaches nothing real.
"""
