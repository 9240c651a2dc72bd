namespace MoeSharp.Cuda.Native;

/// <summary>
/// <c>typedef struct { char internal[NCCL_UNIQUE_ID_BYTES]; } ncclUniqueId;</c> — 128 opaque bytes that rank 0 creates
/// and every rank passes by value to <c>ncclCommInitRank</c>. A fixed buffer keeps the struct blittable with the C
/// layout, so it can be passed by value through an unmanaged function pointer.
/// </summary>
internal unsafe struct NcclUniqueId
{
    /// <summary>The opaque bytes.</summary>
    public fixed byte Internal[NcclConstants.UniqueIdBytes];

    /// <summary>The id from its bytes (as shared over the bootstrap group).</summary>
    public static NcclUniqueId FromBytes(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != NcclConstants.UniqueIdBytes)
            throw new ArgumentException(
                $"an ncclUniqueId has {NcclConstants.UniqueIdBytes} bytes, not {bytes.Length}",
                nameof(bytes)
            );
        var id = new NcclUniqueId();
        bytes.CopyTo(new Span<byte>(id.Internal, NcclConstants.UniqueIdBytes));
        return id;
    }

    /// <summary>The id's bytes.</summary>
    public readonly byte[] ToArray()
    {
        fixed (byte* p = Internal)
            return new ReadOnlySpan<byte>(p, NcclConstants.UniqueIdBytes).ToArray();
    }
}
