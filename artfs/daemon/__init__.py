"""Running the mount: checks, the trio main loop, daemonizing, signals, logs, umount."""
