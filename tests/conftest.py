pytest_plugins = [
    "tests.support.slack", "tests.support.aws", "tests.support.net", "tests.support.step_functions",
]
