"""AWS targets: VPC networks (standard and air-gapped) and spot or on-demand hosts."""
