using System.Collections.Immutable;
using MoeSharp.Collectives;
using MoeSharp.Compute;
using MoeSharp.Tensors;

namespace MoeSharp.Dispatch;

/// <summary>Capacity mode (<see cref="DispatchCapacity"/>): the dispatch whose counts stay on the device.</summary>
public partial class TokenDispatcher
{
    private ICapacityKernels? _capacityKernels;
    private long _overflowRounds;

    /// <summary>
    /// How many dispatches of this dispatcher ran capacity mode's overflow round (the second, sized exchange of the
    /// rows beyond the slots); 0 in the normal mode. The same on every rank of the EP group.
    /// </summary>
    public long OverflowRounds => Interlocked.Read(ref _overflowRounds);

    /// <summary>The capacity kernels of <see cref="Kernels"/>: its own on a device, host loops on the host.</summary>
    private ICapacityKernels CapacityKernels =>
        _capacityKernels ??=
            Kernels as ICapacityKernelSource is { } source ? source.CapacityKernels
            : Kernels.Device.IsHost ? HostCapacityKernels.Instance
            : throw new NotSupportedException(
                $"capacity mode needs kernels that implement it; {Kernels.GetType().Name} on {Kernels.Device.Name} "
                    + $"does not (rank {EpRank})"
            );

    /// <summary>
    /// The dispatch of capacity mode, after the inputs were checked and the shard claimed: scan, count messages and
    /// their exchange, layout and the permutation are built on the device from device counts; the host reads one status
    /// block (validation and the group's overflow flag), and the counts only when the group overflowed.
    /// </summary>
    private DispatchResult DispatchWithCapacity(
        DispatchCapacity capacity,
        Tensor x,
        Tensor topScores,
        Tensor expertIds,
        ShardClaim claim,
        int entries
    )
    {
        if (claim.Shard is not { } shard)
        {
            throw new ArgumentException(
                $"capacity mode needs totalTokens in the sharded layout with balanced sharding and SP = {SpSize}: the "
                    + $"shard's start is otherwise learned from the counts on the host (rank {EpRank})",
                "totalTokens"
            );
        }
        ICapacityKernels kernels = CapacityKernels;
        bool moves = _exchange.MovesRows;
        int e = NumLocalExperts,
            k = Config.TopK,
            alignment = Config.ExpertAlignment;
        // The largest shard's entries, ⌈T/SP⌉·K: the same on every rank of an SP group whatever the sharding policy.
        long largestShard = ((long)shard.TotalTokens + SpSize - 1) / SpSize * Config.TopK;
        int rowsPerPeer = moves ? capacity.RowsPerPeer((int)Math.Min(largestShard, int.MaxValue), EpSize) : entries;
        var shape = new CapacityShape(EpSize, e, rowsPerPeer, alignment, SpSize, shard.TotalTokens);
        int inputRowOffset = Config.Layout == SequenceLayout.Replicated ? shard.Start : 0;
        using var scope = new TensorScope(Allocator);
        using var entryScope = new TensorScope(Allocator);

        // Scan and count on the device; with EP > 1 exchange the count messages there too.
        var columns = new EntryColumns(entryScope.Rent(DType.Int32, entries), entryScope.Rent(DType.Float32, entries));
        Tensor counts = entryScope.Rent(DType.Int32, Config.NumExperts);
        Tensor status = entryScope.Rent(DType.Int32, CapacityStatus.Length);
        var entriesOfShard = new ShardEntries(
            topScores,
            expertIds,
            inputRowOffset,
            claim.RealRows,
            claim.PadRows,
            Config.NumExperts
        );
        kernels.Scan(entriesOfShard, columns, counts, status);
        Tensor? received = null;
        if (moves)
        {
            int length = CapacityMessages.Length(e);
            Tensor send = entryScope.Rent(DType.Int32, EpSize, length);
            received = entryScope.Rent(DType.Int32, EpSize, length);
            kernels.PackMessages(counts, status, shape, send);
            ImmutableArray<int> one = [.. Enumerable.Repeat(1, EpSize)];
            _exchange.ExchangeRows(send, one, received, one);
            kernels.ReadMessages(received, shape, status);
        }
        OverflowRound? overflow = null;
        if (moves || capacity.ValidateOnHost)
            overflow = ReadCapacityStatus(status, counts, received, shape, inputRowOffset);

        // The local layout: expert-sorted entries in their slots (EP > 1) or in aligned runs (EP = 1).
        int slotRows = EpSize * rowsPerPeer;
        int localRows = moves
            ? RowsWithin(slotRows, overflow?.Sent ?? 0, 1)
            : RowsWithin(entries, Config.NumExperts, alignment - 1);
        CheckRowBytes(localRows, x);
        Tensor order = entryScope.Rent(DType.Int32, entries);
        kernels.SortByExpert(columns.Ids, counts, order);
        Tensor rowOfSorted = entryScope.Rent(DType.Int32, entries);
        kernels.LocalRows(counts, shape, rowOfSorted);
        var local = new LocalLayoutMaps(
            RowToken: scope.Rent(DType.Int32, localRows),
            RowScore: scope.Rent(DType.Float32, localRows),
            EntryRow: scope.Rent(DType.Int32, shard.RealRows * k),
            TokenPositions: scope.Rent(DType.Int32, shard.RealRows, k)
        );
        Kernels.Entries.BuildLocalLayout(
            new SortedEntries(order, columns.Scores, shard.RealRows, k, rowOfSorted),
            local
        );
        if (overflow is not null)
        {
            // Overflow rows sit after every slot, so a token's rows are no longer in expert order: its positions come
            // from the sorted order (ascending expert id) and are mapped to their rows, keeping combine's add order.
            var sorted = new LocalLayoutMaps(
                RowToken: entryScope.Rent(DType.Int32, entries),
                RowScore: entryScope.Rent(DType.Float32, entries),
                EntryRow: entryScope.Rent(DType.Int32, shard.RealRows * k),
                TokenPositions: local.TokenPositions
            );
            Kernels.Entries.BuildLocalLayout(new SortedEntries(order, columns.Scores, shard.RealRows, k, null), sorted);
            kernels.RemapPositions(local.TokenPositions, rowOfSorted);
        }
        Tensor gathered = scope.Rent(x.DType, localRows, x.RowLength);
        Kernels.Rows.ScatterTokenRows(x, inputRowOffset, TokenScatterOf(local, Config.ScoreBeforeExperts), gathered);

        // The receive side's maps and rows per expert, from the received messages.
        Tensor tokensPerLocalExpert = scope.Rent(DType.Int32, e);
        ExpertMajorPermutation? permutation = null;
        int rowsReceived = localRows,
            routedRows = localRows;
        if (moves)
        {
            rowsReceived = RowsWithin(slotRows, overflow?.Received ?? 0, 1);
            routedRows = RowsWithin(rowsReceived, e, alignment - 1);
            CheckRowBytes(routedRows, x);
            permutation = new ExpertMajorPermutation(
                scope.Rent(DType.Int32, routedRows),
                scope.Rent(DType.Int32, rowsReceived)
            );
            kernels.ReceivePermutation(
                received!,
                shape,
                permutation.ExpertMajorRowOf,
                permutation.RankMajorRowOf,
                tokensPerLocalExpert
            );
        }
        else
        {
            kernels.AlignedExpertRows(counts, alignment, tokensPerLocalExpert);
        }
        DispatchPlan plan = DispatchPlan.ForCapacity(
            Config,
            EpSize,
            shard,
            entries,
            rowsPerPeer,
            localRows,
            rowsReceived,
            routedRows
        );
        var metadata = new DispatchMetadata(this, plan, x.ShapeArray(), x.DType, local, permutation)
        {
            Capacity = new CapacityState(rowsPerPeer, tokensPerLocalExpert, overflow),
        };

        Tensor routed = moves ? ToExpertMajor(gathered, null, metadata, scope, null, out _) : gathered;
        scope.Keep(routed);
        foreach (Tensor map in metadata.Tensors)
            scope.Keep(map);
        if (overflow is not null)
            Interlocked.Increment(ref _overflowRounds);
        return new DispatchResult(routed, plan.TokensPerLocalExpert, metadata);
    }

    /// <summary>
    /// The one host read of a capacity-mode dispatch without overflow: the status block. Throws for an invalid entry
    /// here or on a peer and for ranks that disagree on C; when the group overflowed, reads this rank's counts and the
    /// received messages (the only count read of the mode) and returns the overflow round's sizes.
    /// </summary>
    private OverflowRound? ReadCapacityStatus(
        Tensor status,
        Tensor counts,
        Tensor? received,
        CapacityShape shape,
        int inputRowOffset
    )
    {
        int[] words = Kernels.Device.ToHost(status).AsSpan<int>().ToArray();
        if (words[0] != int.MaxValue)
        {
            long id = ((long)words[2] << 32) | (uint)words[1];
            throw InvalidEntry(
                new EntryScan([], words[0], id, BitConverter.Int32BitsToSingle(words[3])),
                inputRowOffset
            );
        }
        if (received is null)
            return null;
        if (words[CapacityStatus.InvalidRank] is int peer and >= 0)
        {
            throw new PeerRankException(
                $"rank {peer} passed an invalid routing entry (an expert id outside [0, {Config.NumExperts}) or a "
                    + $"non-finite score; its own error names it), so no rank dispatches (rank {EpRank})",
                peer,
                "expertIds"
            );
        }
        if (words[CapacityStatus.TokensMismatchRank] is int disagreeing and >= 0)
        {
            int first = disagreeing / SpSize * SpSize;
            throw new ArgumentException(
                $"ranks {first} and {disagreeing} of SP group {disagreeing / SpSize} disagree on the token count T "
                    + $"(seen on rank {EpRank})"
            );
        }
        if (words[CapacityStatus.CapacityMismatchRank] is int other and >= 0)
        {
            throw new ArgumentException(
                $"ranks 0 and {other} of the EP group compute different capacities C under {Config.Capacity}: every "
                    + $"SP group must hold the same number of tokens T under a capacity factor (rank {EpRank})"
            );
        }
        if (words[CapacityStatus.Overflow] == 0)
            return null;
        // Overflow: this round runs on every rank of the group, which all read the same flag.
        int e = shape.LocalExperts,
            capacity = shape.RowsPerPeer,
            length = CapacityMessages.Length(e);
        int[] mine = Kernels.Device.ToHost(counts).AsSpan<int>().ToArray();
        int[] messages = Kernels.Device.ToHost(received).AsSpan<int>().ToArray();
        var send = new int[EpSize];
        var receive = new int[EpSize];
        for (int q = 0; q < EpSize; q++)
        {
            int to = 0,
                from = 0;
            for (int j = 0; j < e; j++)
            {
                to += mine[q * e + j];
                from += messages[q * length + j];
            }
            send[q] = Math.Max(0, to - capacity);
            receive[q] = Math.Max(0, from - capacity);
        }
        return new OverflowRound(EpSize * capacity, send, receive);
    }

    /// <summary>
    /// The overflow round in one direction: rows <c>[SlotRows, SlotRows + Σ sendRows)</c> of
    /// <paramref name="from"/> to the peers, the peers' rows to <paramref name="to"/> from row <c>SlotRows</c>.
    /// </summary>
    private void ExchangeOverflow(Tensor from, int slotRows, int[] sendRows, Tensor to, int[] receiveRows)
    {
        int sent = sendRows.Sum(),
            receivedRows = receiveRows.Sum();
        using var scope = new TensorScope(Allocator);
        Tensor send = scope.Rent(from.DType, sent, from.RowLength);
        Tensor receive = scope.Rent(to.DType, receivedRows, to.RowLength);
        Kernels.Rows.CopyRows(from, slotRows, send, 0, sent);
        Receive(scope, receive, () => _exchange.ExchangeRows(send, [.. sendRows], receive, [.. receiveRows]));
        Kernels.Rows.CopyRows(receive, 0, to, slotRows, receivedRows);
    }

    /// <summary><paramref name="rows"/> plus <paramref name="groups"/> times <paramref name="extra"/>, checked against
    /// what a tensor indexes.</summary>
    private int RowsWithin(int rows, int groups, int extra)
    {
        long total = rows + (long)groups * extra;
        if (total > int.MaxValue)
            throw new SizeLimitException($"capacity mode needs {total} rows, over 2^31 (rank {EpRank})");
        return (int)total;
    }

    /// <summary>Checks that <paramref name="rows"/> rows of <paramref name="x"/>'s width fit one tensor.</summary>
    private void CheckRowBytes(int rows, Tensor x)
    {
        if ((long)rows * x.RowLength > int.MaxValue)
        {
            throw new SizeLimitException(
                $"capacity mode needs {rows} rows of {x.RowLength} elements, over 2^31 elements (rank {EpRank})"
            );
        }
    }
}
