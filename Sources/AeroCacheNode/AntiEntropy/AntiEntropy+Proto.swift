import AeroCacheCore
import AeroCacheProto

extension DigestPiece {
    init(_ proto: Aerocache_V1_DigestPiece) {
        self.init(start: proto.start, width: proto.width, root: proto.root)
    }

    var proto: Aerocache_V1_DigestPiece {
        var piece = Aerocache_V1_DigestPiece()
        piece.start = start
        piece.width = width
        piece.root = root
        return piece
    }
}

extension PieceLeaves {
    init(_ proto: Aerocache_V1_PieceLeaves) {
        self.init(start: proto.start, width: proto.width, leaves: proto.leaves)
    }

    var proto: Aerocache_V1_PieceLeaves {
        var piece = Aerocache_V1_PieceLeaves()
        piece.start = start
        piece.width = width
        piece.leaves = leaves
        return piece
    }
}

extension BucketRequest {
    init(_ proto: Aerocache_V1_BucketRequest) {
        self.init(start: proto.start, width: proto.width, buckets: proto.buckets)
    }

    var proto: Aerocache_V1_BucketRequest {
        var request = Aerocache_V1_BucketRequest()
        request.start = start
        request.width = width
        request.buckets = buckets
        return request
    }
}
