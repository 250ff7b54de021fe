"""The KVM ioctl layer: uapi declarations (cffi), ioctl numbers, and /dev/kvm objects."""
