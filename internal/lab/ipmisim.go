package lab

import "fmt"

// startIPMISim runs OpenIPMI's ipmi_sim as node i's BMC.
func startIPMISim(st *State, i int, opts Options) error {
	return fmt.Errorf("node %s: the ipmi_sim BMC is not implemented yet: use --bmc vbmc", st.Nodes[i].Name)
}
