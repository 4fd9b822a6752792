"""deepcore's thread pool for threadpoolctl (what scikit-learn and joblib use against
oversubscription): `threadpool_info()` lists it (user_api "deepcore") and
`threadpool_limits(n)` limits it, through the extension's exported symbols
`deepcore_get_num_threads` / `deepcore_set_num_threads`. Registered when deepcore is
imported, if threadpoolctl is installed."""

from __future__ import annotations

__all__ = ["register"]


def register() -> None:
    try:
        import threadpoolctl
    except ImportError:
        return
    if not hasattr(threadpoolctl, "register"):  # (threadpoolctl before 3.0)
        return
    from . import __version__

    class DeepcoreController(threadpoolctl.LibController):
        user_api = "deepcore"
        internal_api = "deepcore"
        filename_prefixes = ("_core",)
        check_symbols = ("deepcore_get_num_threads", "deepcore_set_num_threads")

        def get_num_threads(self):
            return self.dynlib.deepcore_get_num_threads()

        def set_num_threads(self, num_threads):
            self.dynlib.deepcore_set_num_threads(int(num_threads))

        def get_version(self):
            return __version__

        def set_additional_attributes(self):
            pass

    threadpoolctl.register(DeepcoreController)
