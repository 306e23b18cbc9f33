pytest_plugins = ["tests.support.slack", "tests.support.aws", "tests.support.net"]
