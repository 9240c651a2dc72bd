using System.Collections.Immutable;
using MoeSharp.Collectives;
using MoeSharp.Tensors;

namespace MoeSharp.Dispatch;

/// <summary>
/// An exchange that moves routed rows straight between the rank-major rows a sender keeps and the expert-major rows
/// the receiver computes on (<see cref="ExpertMajorBlocks"/>), so no permuting copy follows the dispatch's exchange or
/// precedes the combine's: each row is copied once, from the sender's buffer into its final place.
/// </summary>
/// <remarks>In-process ranks on the host do this; other groups (MPI, devices) exchange and permute as before.</remarks>
internal interface IPlacedRowExchange
{
    /// <summary>Whether rows held like <paramref name="rows"/> can move placed on this exchange.</summary>
    bool PlacesRows(Tensor rows);

    /// <summary>
    /// The row all-to-all-v of <see cref="ITokenExchange.ExchangeRows"/>, with either side's chunks laid out as blocks
    /// (null: one run per peer at the splits' prefix sums). With <paramref name="overlap"/> it returns once started.
    /// </summary>
    CollectiveRequest ExchangePlacedRows(
        Tensor send,
        ImmutableArray<int> sendRows,
        ChunkBlocks? sendBlocks,
        Tensor receive,
        ImmutableArray<int> receiveRows,
        ChunkBlocks? receiveBlocks,
        bool overlap
    );

    /// <summary>
    /// The backward exchange without its copy: every rank offers its <paramref name="send"/> rows
    /// (<paramref name="sendRows"/>[q] to rank q, at <paramref name="sendBlocks"/> or one run each), and
    /// <paramref name="read"/> gets the address of every row the others offer this rank, in the order the exchange
    /// would have received them; it returns once every rank has read, so the rows may be reused.
    /// </summary>
    void ReadPeerRows(
        Tensor send,
        ImmutableArray<int> sendRows,
        ChunkBlocks? sendBlocks,
        ImmutableArray<int> receiveRows,
        Action<nint[]> read
    );
}
