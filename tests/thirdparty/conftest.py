"""The toy plugin is a separate distribution, not installed in the checkout's environment: its
own tests run only inside the fresh virtualenv that ``tests/test_third_party_plugin.py`` builds."""

collect_ignore = ["toyarch"]
