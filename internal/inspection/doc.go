// Package inspection is Ironic's inspection rules engine: it validates rules as Ironic's API
// does (ParseRule), loads built-in rules from a file (LoadBuiltIn), and runs rules over a
// node, its ports, an inventory and plugin data (Engine.Run), with Ironic's condition
// operators, actions, loops and {inventory[...]} interpolation. The engine does no I/O: Run
// returns the changed node, ports and plugin data and a failure reason, and the caller stores
// them. Hook is the conductor's adapter: it reads the rules and ports through small interfaces
// and saves the ports the rules changed. Rule storage is sqlstore's, the API httpapi's.
package inspection
