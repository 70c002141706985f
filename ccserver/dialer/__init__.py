"""The outbound dialer (issue #14): the pacing model, the simulation, the cluster-leased dialing component."""
