// What a service using the client names with `import AeroCacheClient` alone: the error every
// call throws and the consistency levels a call may ask for.
@_exported import struct AeroCacheRPC.RPCError
@_exported import enum AeroCacheCore.Consistency
@_exported import class AeroCacheTransport.ClientTLS
@_exported import struct AeroCacheTransport.TLSFileError
