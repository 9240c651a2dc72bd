using MoeSharp.Compute;
using MoeSharp.Tensors;

namespace MoeSharp.Dispatch;

/// <summary>
/// <see cref="ICapacityKernels"/> on host memory: the same results as the device kernels, written as plain loops
/// (the host has no transfer to save, so capacity mode there exists for the bitwise comparison with the normal mode
/// and for host ranks that want fixed buffers).
/// </summary>
internal sealed class HostCapacityKernels : ICapacityKernels
{
    /// <summary>The one instance (the kernels keep no state).</summary>
    public static HostCapacityKernels Instance { get; } = new();

    /// <inheritdoc />
    public void Scan(ShardEntries shard, EntryColumns entries, Tensor counts, Tensor status)
    {
        (Tensor topScores, Tensor expertIds, int rowOffset, int realTokens, _, int numExperts) = shard;
        int k = topScores.RowLength,
            real = realTokens * k;
        ReadOnlySpan<float> scores = topScores.AsSpan<float>().Slice(rowOffset * k, real);
        bool wide = expertIds.DType == DType.Int64;
        ReadOnlySpan<long> ids64 = wide ? expertIds.AsSpan<long>().Slice(rowOffset * k, real) : default;
        ReadOnlySpan<int> ids32 = wide ? default : expertIds.AsSpan<int>().Slice(rowOffset * k, real);
        Span<int> outIds = entries.Ids.AsSpan<int>();
        Span<float> outScores = entries.Scores.AsSpan<float>();
        Span<int> count = counts.AsSpan<int>();
        Span<int> words = status.AsSpan<int>();
        count.Clear();
        words.Clear();
        words[0] = int.MaxValue;
        for (int i = 0; i < real; i++)
        {
            long id = wide ? ids64[i] : ids32[i];
            float s = scores[i];
            if ((ulong)id >= (ulong)numExperts || !float.IsFinite(s))
            {
                if (words[0] == int.MaxValue)
                {
                    words[0] = i;
                    words[1] = (int)id;
                    words[2] = (int)(id >> 32);
                    words[3] = BitConverter.SingleToInt32Bits(s);
                }
                id = 0;
                s = 0f;
            }
            outIds[i] = (int)id;
            outScores[i] = s;
            count[(int)id]++;
        }
        outIds.Slice(real).Clear();
        outScores.Slice(real).Clear();
        count[0] += outIds.Length - real;
    }

    /// <inheritdoc />
    public void SortByExpert(Tensor expertIds, Tensor counts, Tensor order)
    {
        ReadOnlySpan<int> ids = expertIds.AsSpan<int>();
        ReadOnlySpan<int> count = counts.AsSpan<int>();
        Span<int> sorted = order.AsSpan<int>();
        var next = new int[count.Length];
        for (int x = 1; x < next.Length; x++)
            next[x] = next[x - 1] + count[x - 1];
        for (int i = 0; i < ids.Length; i++)
            sorted[next[ids[i]]++] = i;
    }

    /// <inheritdoc />
    public void LocalRows(Tensor counts, CapacityShape shape, Tensor rowOfSorted)
    {
        ReadOnlySpan<int> count = counts.AsSpan<int>();
        Span<int> rows = rowOfSorted.AsSpan<int>();
        int position = 0;
        if (shape.Ranks == 1)
        {
            int row = 0;
            foreach (int c in count)
            {
                for (int r = 0; r < c; r++)
                    rows[position++] = row + r;
                row += (int)DispatchSizes.AlignUp(c, shape.Alignment);
            }
            return;
        }
        int e = shape.LocalExperts,
            capacity = shape.RowsPerPeer,
            overflow = shape.Ranks * capacity;
        for (int q = 0; q < shape.Ranks; q++)
        {
            int sent = 0;
            for (int j = 0; j < e; j++)
                sent += count[q * e + j];
            for (int o = 0; o < sent; o++)
                rows[position++] = o < capacity ? q * capacity + o : overflow + o - capacity;
            overflow += Math.Max(0, sent - capacity);
        }
    }

    /// <inheritdoc />
    public void PackMessages(Tensor counts, Tensor status, CapacityShape shape, Tensor send)
    {
        ReadOnlySpan<int> count = counts.AsSpan<int>();
        Span<int> sent = send.AsSpan<int>();
        int e = shape.LocalExperts,
            length = CapacityMessages.Length(e);
        bool overflows = false;
        for (int q = 0; q < shape.Ranks; q++)
        {
            int rows = 0;
            for (int j = 0; j < e; j++)
                rows += count[q * e + j];
            overflows |= rows > shape.RowsPerPeer;
        }
        int invalid = status.AsSpan<int>()[0] == int.MaxValue ? 0 : 1;
        for (int q = 0; q < shape.Ranks; q++)
        {
            Span<int> message = sent.Slice(q * length, length);
            count.Slice(q * e, e).CopyTo(message);
            message[CapacityMessages.CapacityOffset(e)] = shape.RowsPerPeer;
            message[CapacityMessages.OverflowOffset(e)] = overflows ? 1 : 0;
            message[CapacityMessages.InvalidOffset(e)] = invalid;
            message[CapacityMessages.TokensOffset(e)] = shape.Tokens;
        }
    }

    /// <inheritdoc />
    public void ReadMessages(Tensor received, CapacityShape shape, Tensor status)
    {
        ReadOnlySpan<int> messages = received.AsSpan<int>();
        Span<int> words = status.AsSpan<int>();
        int e = shape.LocalExperts,
            length = CapacityMessages.Length(e);
        int invalidRank = -1,
            mismatch = -1,
            tokensMismatch = -1,
            overflow = 0;
        for (int p = shape.Ranks - 1; p >= 0; p--)
        {
            ReadOnlySpan<int> message = messages.Slice(p * length, length);
            if (message[CapacityMessages.InvalidOffset(e)] != 0)
                invalidRank = p;
            if (message[CapacityMessages.CapacityOffset(e)] != messages[CapacityMessages.CapacityOffset(e)])
                mismatch = p;
            overflow |= message[CapacityMessages.OverflowOffset(e)];
            int first = p / shape.SpSize * shape.SpSize * length + CapacityMessages.TokensOffset(e);
            if (message[CapacityMessages.TokensOffset(e)] != messages[first])
                tokensMismatch = p;
        }
        words[CapacityStatus.InvalidRank] = invalidRank;
        words[CapacityStatus.Overflow] = overflow;
        words[CapacityStatus.CapacityMismatchRank] = mismatch;
        words[CapacityStatus.TokensMismatchRank] = tokensMismatch;
    }

    /// <inheritdoc />
    public void ReceivePermutation(
        Tensor received,
        CapacityShape shape,
        Tensor expertMajorRowOf,
        Tensor rankMajorRowOf,
        Tensor tokensPerLocalExpert
    )
    {
        int[] messages = received.AsSpan<int>().ToArray();
        Span<int> toReceived = expertMajorRowOf.AsSpan<int>();
        Span<int> toRouted = rankMajorRowOf.AsSpan<int>();
        Span<int> perExpert = tokensPerLocalExpert.AsSpan<int>();
        int s = shape.Ranks,
            e = shape.LocalExperts,
            capacity = shape.RowsPerPeer,
            length = CapacityMessages.Length(e);
        int Count(int p, int j) => messages[p * length + j];
        var next = new int[e];
        int routed = 0;
        for (int j = 0; j < e; j++)
        {
            int rows = 0;
            for (int p = 0; p < s; p++)
                rows += Count(p, j);
            next[j] = routed;
            perExpert[j] = (int)DispatchSizes.AlignUp(rows, shape.Alignment);
            routed += perExpert[j];
        }
        toReceived.Fill(-1);
        toRouted.Fill(-1);
        int overflowRow = s * capacity;
        for (int p = 0; p < s; p++)
        {
            int o = 0;
            for (int j = 0; j < e; j++)
            {
                for (int w = 0; w < Count(p, j); w++, o++)
                {
                    int row = o < capacity ? p * capacity + o : overflowRow + o - capacity;
                    int target = next[j]++;
                    toRouted[row] = target;
                    toReceived[target] = row;
                }
            }
            overflowRow += Math.Max(0, o - capacity);
        }
    }

    /// <inheritdoc />
    public void RemapPositions(Tensor positions, Tensor rowOfSorted)
    {
        Span<int> position = positions.AsSpan<int>();
        ReadOnlySpan<int> rows = rowOfSorted.AsSpan<int>();
        for (int i = 0; i < position.Length; i++)
            position[i] = position[i] < 0 ? -1 : rows[position[i]];
    }

    /// <inheritdoc />
    public void AlignedExpertRows(Tensor counts, int alignment, Tensor tokensPerExpert)
    {
        ReadOnlySpan<int> count = counts.AsSpan<int>();
        Span<int> rows = tokensPerExpert.AsSpan<int>();
        for (int j = 0; j < count.Length; j++)
            rows[j] = (int)DispatchSizes.AlignUp(count[j], alignment);
    }
}
