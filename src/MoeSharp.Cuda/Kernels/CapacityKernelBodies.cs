using ILGPU;

namespace MoeSharp.Cuda.Kernels;

/// <summary>
/// The kernel bodies of capacity mode (<see cref="IlgpuCapacityKernels"/>): what the normal mode computes on the host
/// from the counts, computed from counts that stay on the device. Integer work only; the loops over experts and ranks
/// are short (E, S·e), so each thread recomputes the prefixes it needs instead of waiting on another kernel.
/// </summary>
internal static class CapacityKernelBodies
{
    /// <summary>
    /// Thread i: entry i's id and score, an invalid one (id outside [0, E), non-finite score) written as expert 0 with
    /// score 0 and its index kept in <c>status[0]</c> (the lowest wins); pad entries (i ≥ real) expert 0, score 0.
    /// Every entry is counted on its written expert (integer atomics: the order does not matter).
    /// </summary>
    public static void Scan32(
        Index1D i,
        ArrayView<int> expertIds,
        ArrayView<float> scores,
        int offset,
        int real,
        int experts,
        ArrayView<int> ids,
        ArrayView<float> entryScores,
        ArrayView<int> counts,
        ArrayView<int> status
    )
    {
        if (i >= real)
        {
            Store(i, 0, 0f, ids, entryScores, counts);
            return;
        }
        int id = expertIds[offset + i];
        float score = scores[offset + i];
        if ((uint)id >= (uint)experts || !Finite(score))
        {
            Atomic.Min(ref status[0], i);
            id = 0;
            score = 0f;
        }
        Store(i, id, score, ids, entryScores, counts);
    }

    /// <summary>As <see cref="Scan32"/> for int64 ids.</summary>
    public static void Scan64(
        Index1D i,
        ArrayView<long> expertIds,
        ArrayView<float> scores,
        int offset,
        int real,
        int experts,
        ArrayView<int> ids,
        ArrayView<float> entryScores,
        ArrayView<int> counts,
        ArrayView<int> status
    )
    {
        if (i >= real)
        {
            Store(i, 0, 0f, ids, entryScores, counts);
            return;
        }
        long id = expertIds[offset + i];
        float score = scores[offset + i];
        if ((ulong)id >= (ulong)experts || !Finite(score))
        {
            Atomic.Min(ref status[0], i);
            id = 0;
            score = 0f;
        }
        Store(i, (int)id, score, ids, entryScores, counts);
    }

    /// <summary>One thread: the exclusive prefix of the counts, each expert's first sorted position.</summary>
    public static void ExpertStarts(Index1D i, ArrayView<int> counts, int experts, ArrayView<int> starts)
    {
        int running = 0;
        for (int x = 0; x < experts; x++)
        {
            starts[x] = running;
            running += counts[x];
        }
    }

    /// <summary>
    /// Thread i (a sorted position): its local-layout row. One rank: the expert runs padded to the alignment. Several:
    /// the o-th entry for rank q goes to slot row <c>q·C + o</c>, or past the slots when <c>o ≥ C</c>.
    /// </summary>
    public static void LocalRows(
        Index1D i,
        ArrayView<int> counts,
        int ranks,
        int localExperts,
        int capacity,
        int alignment,
        ArrayView<int> rowOfSorted
    )
    {
        int position = i;
        if (ranks == 1)
        {
            int start = 0,
                row = 0,
                x = 0;
            while (position >= start + counts[x])
            {
                start += counts[x];
                row += AlignUp(counts[x], alignment);
                x++;
            }
            rowOfSorted[i] = row + position - start;
            return;
        }
        int sent = 0,
            overflow = ranks * capacity,
            q = 0;
        while (true)
        {
            int rows = RowsFor(counts, q, localExperts);
            if (position < sent + rows)
                break;
            sent += rows;
            overflow += Max0(rows - capacity);
            q++;
        }
        int o = position - sent;
        rowOfSorted[i] = o < capacity ? q * capacity + o : overflow + o - capacity;
    }

    /// <summary>
    /// Thread q: message q, this rank's counts of rank q's experts, then C, whether any slot of this rank overflows,
    /// whether its scan found an invalid entry, and its T.
    /// </summary>
    public static void PackMessages(
        Index1D q,
        ArrayView<int> counts,
        ArrayView<int> status,
        int ranks,
        int localExperts,
        int capacity,
        int tokens,
        ArrayView<int> send
    )
    {
        int length = localExperts + 4;
        int overflows = 0;
        for (int r = 0; r < ranks; r++)
        {
            if (RowsFor(counts, r, localExperts) > capacity)
                overflows = 1;
        }
        int at = q * length;
        for (int j = 0; j < localExperts; j++)
            send[at + j] = counts[q * localExperts + j];
        send[at + localExperts] = capacity;
        send[at + localExperts + 1] = overflows;
        send[at + localExperts + 2] = status[0] == int.MaxValue ? 0 : 1;
        send[at + localExperts + 3] = tokens;
    }

    /// <summary>
    /// One thread: the first rank with an invalid entry, whether any rank overflowed, the first rank whose C differs
    /// from rank 0's, the first rank whose T differs from its SP group's first rank's, into status words 4–7.
    /// </summary>
    public static void ReadMessages(
        Index1D i,
        ArrayView<int> received,
        int ranks,
        int localExperts,
        int spSize,
        ArrayView<int> status
    )
    {
        int length = localExperts + 4;
        int invalid = -1,
            mismatch = -1,
            tokensMismatch = -1,
            overflow = 0;
        for (int p = ranks - 1; p >= 0; p--)
        {
            int at = p * length;
            if (received[at + localExperts + 2] != 0)
                invalid = p;
            if (received[at + localExperts] != received[localExperts])
                mismatch = p;
            if (received[at + localExperts + 1] != 0)
                overflow = 1;
            if (received[at + localExperts + 3] != received[p / spSize * spSize * length + localExperts + 3])
                tokensMismatch = p;
        }
        status[4] = invalid;
        status[5] = overflow;
        status[6] = mismatch;
        status[7] = tokensMismatch;
    }

    /// <summary>Thread j: local expert j's received rows, padded to the alignment.</summary>
    public static void ReceivedExpertRows(
        Index1D j,
        ArrayView<int> received,
        int ranks,
        int localExperts,
        int alignment,
        ArrayView<int> tokensPerLocalExpert
    ) => tokensPerLocalExpert[j] = AlignUp(ReceivedFor(received, ranks, localExperts, j), alignment);

    /// <summary>
    /// Thread s (a received row: slots rank-major, then the overflow rows rank-major): the (source p, offset o) it
    /// holds, the local expert j of that offset, and the expert-major row it maps to, both ways; -1 for an empty slot.
    /// </summary>
    public static void ReceiveMap(
        Index1D s,
        ArrayView<int> received,
        int ranks,
        int localExperts,
        int capacity,
        int alignment,
        ArrayView<int> expertMajorRowOf,
        ArrayView<int> rankMajorRowOf
    )
    {
        int length = localExperts + 4,
            slots = ranks * capacity,
            row = s;
        int p,
            o;
        if (row < slots)
        {
            p = row / capacity;
            o = row - p * capacity;
        }
        else
        {
            int past = row - slots,
                start = 0;
            p = 0;
            while (p < ranks)
            {
                int extra = Max0(RowsFor(received, p, localExperts, length) - capacity);
                if (past < start + extra)
                    break;
                start += extra;
                p++;
            }
            o = capacity + past - start;
        }
        int j = 0,
            within = o;
        while (p < ranks && j < localExperts && within >= received[p * length + j])
        {
            within -= received[p * length + j];
            j++;
        }
        if (p >= ranks || j >= localExperts)
        {
            rankMajorRowOf[row] = -1;
            return;
        }
        int routed = within;
        for (int x = 0; x < j; x++)
            routed += AlignUp(ReceivedFor(received, ranks, localExperts, x), alignment);
        for (int before = 0; before < p; before++)
            routed += received[before * length + j];
        rankMajorRowOf[row] = routed;
        expertMajorRowOf[routed] = row;
    }

    /// <summary>Thread i: a sorted position mapped to its local-layout row (-1 stays).</summary>
    public static void RemapPositions(Index1D i, ArrayView<int> positions, ArrayView<int> rowOfSorted)
    {
        int position = positions[i];
        positions[i] = position < 0 ? -1 : rowOfSorted[position];
    }

    /// <summary>Thread j: expert j's count rounded up to the alignment.</summary>
    public static void AlignedExpertRows(
        Index1D j,
        ArrayView<int> counts,
        int alignment,
        ArrayView<int> tokensPerExpert
    ) => tokensPerExpert[j] = AlignUp(counts[j], alignment);

    private static void Store(
        int i,
        int id,
        float score,
        ArrayView<int> ids,
        ArrayView<float> entryScores,
        ArrayView<int> counts
    )
    {
        ids[i] = id;
        entryScores[i] = score;
        Atomic.Add(ref counts[id], 1);
    }

    /// <summary>Finite: the exponent bits are not all ones (as <see cref="float.IsFinite"/>).</summary>
    private static bool Finite(float value) => (Interop.FloatAsInt(value) & 0x7F800000u) != 0x7F800000u;

    private static int AlignUp(int rows, int alignment) => (rows + alignment - 1) / alignment * alignment;

    private static int Max0(int value) => value > 0 ? value : 0;

    /// <summary>Entries this rank's counts hold for rank q's experts.</summary>
    private static int RowsFor(ArrayView<int> counts, int q, int localExperts)
    {
        int rows = 0;
        for (int j = 0; j < localExperts; j++)
            rows += counts[q * localExperts + j];
        return rows;
    }

    /// <summary>Rows source p's message announces.</summary>
    private static int RowsFor(ArrayView<int> received, int p, int localExperts, int length)
    {
        int rows = 0;
        for (int j = 0; j < localExperts; j++)
            rows += received[p * length + j];
        return rows;
    }

    /// <summary>Rows every source's message announces for local expert j.</summary>
    private static int ReceivedFor(ArrayView<int> received, int ranks, int localExperts, int j)
    {
        int rows = 0;
        for (int p = 0; p < ranks; p++)
            rows += received[p * (localExperts + 4) + j];
        return rows;
    }
}
