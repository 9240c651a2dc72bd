namespace MoeSharp.Tensors;

/// <summary>
/// Bytes read from a stream of unknown length (a pipe) into memory allocated only as they arrive: pieces that start
/// at <see cref="FirstPieceBytes"/> and double, each allocated once the ones before it are full. A stream that ends
/// early has cost at most about twice what it delivered, however many bytes were asked for.
/// </summary>
internal sealed class ArrivedBytes
{
    /// <summary>The first piece's size: small next to a large tensor, large enough that pieces are few.</summary>
    public const int FirstPieceBytes = 1 << 16;

    /// <summary>The largest piece, far below <see cref="Array.MaxLength"/>.</summary>
    private const int MaxPieceBytes = 1 << 30;

    private readonly List<ArraySegment<byte>> _pieces = [];
    private int _drainPiece;
    private int _drainOffset;

    private ArrivedBytes() { }

    /// <summary>Bytes held: what the stream delivered, less any drained.</summary>
    public long Length { get; private set; }

    /// <summary>
    /// Reads until <paramref name="count"/> bytes have arrived or the stream ends; <see cref="Length"/> tells which.
    /// </summary>
    /// <param name="stream">The stream, read from its current position.</param>
    /// <param name="count">Bytes wanted; 0 reads nothing and allocates nothing.</param>
    /// <param name="firstPieceBytes">The first piece's size (tests pass small values to exercise piece
    /// boundaries).</param>
    public static ArrivedBytes Read(Stream stream, long count, int firstPieceBytes = FirstPieceBytes)
    {
        var arrived = new ArrivedBytes();
        while (arrived.Length < count)
        {
            // Doubling: the next piece is as large as all before it, so an unfilled one at most doubles the cost.
            long size = Math.Min(Math.Max(firstPieceBytes, arrived.Length), MaxPieceBytes);
            byte[] piece = GC.AllocateUninitializedArray<byte>((int)Math.Min(size, count - arrived.Length));
            int got = stream.ReadAtLeast(piece, piece.Length, throwOnEndOfStream: false);
            arrived._pieces.Add(new ArraySegment<byte>(piece, 0, got));
            arrived.Length += got;
            if (got < piece.Length)
                break;
        }
        return arrived;
    }

    /// <summary>
    /// Moves the oldest bytes held into <paramref name="destination"/> and lets go of each piece once it is emptied;
    /// returns how many it moved (fewer than the destination's length only when none are left).
    /// </summary>
    public int Drain(Span<byte> destination)
    {
        int moved = 0;
        while (moved < destination.Length && _drainPiece < _pieces.Count)
        {
            ArraySegment<byte> piece = _pieces[_drainPiece];
            int n = Math.Min(piece.Count - _drainOffset, destination.Length - moved);
            piece.AsSpan(_drainOffset, n).CopyTo(destination[moved..]);
            moved += n;
            _drainOffset += n;
            if (_drainOffset == piece.Count)
            {
                _pieces[_drainPiece++] = ArraySegment<byte>.Empty;
                _drainOffset = 0;
            }
        }
        Length -= moved;
        return moved;
    }

    /// <summary>All the bytes held, as one array (the single piece itself when there is only one).</summary>
    public byte[] ToArray()
    {
        if (_pieces is [{ Offset: 0 } only] && only.Count == only.Array!.Length && _drainOffset == 0)
            return only.Array;
        byte[] all = new byte[Length];
        Drain(all);
        return all;
    }
}
