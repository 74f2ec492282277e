//go:build wasip1

package sdk

//go:wasmexport portico_channel
func porticoChannel(size uint32) uint32 {
	return dispatchChannel(readInput(size), func(b []byte) { hostOutput(ptr(b), uint32(len(b))) }, fail)
}
