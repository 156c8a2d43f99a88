from components.pusher.component import Pusher

__all__ = ["Pusher"]
