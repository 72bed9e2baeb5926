"""When the GPU may work by the clock: weekly schedule windows, and the timers that drive sampling."""
