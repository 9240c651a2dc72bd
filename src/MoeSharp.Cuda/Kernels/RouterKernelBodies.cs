using ILGPU;

namespace MoeSharp.Cuda.Kernels;

/// <summary>
/// Kernel bodies behind <see cref="IlgpuRouterKernels"/>: the same operation sequences as
/// <c>HostScoreFunctions</c>, the router's top-k (<c>TopKExpertChoice</c>) and their backward passes, one thread per
/// element (sigmoid) or per token: a group's tokens are staged through shared memory (a "tile", the group's rows
/// <c>[g·DimX, g·DimX + DimX)</c>), so global memory is read and written in whole coalesced rows, and the softmax
/// and the top-k (and their backward passes) can share one launch and one pass over the rows. One thread per row
/// straight from global memory read each row 512 bytes apart per warp and ran 16 groups of 1024 on a 132-SM H200
/// (softmax 0.43 ms at T 16384, E 128).
/// </summary>
internal static class RouterKernelBodies
{
    /// <summary>The top-k's sizes and options (one kernel parameter instead of nine).</summary>
    public struct TopKChoice
    {
        /// <summary>E and K.</summary>
        public int Experts,
            K;

        /// <summary>Expert groups G (0: no node-limited choice) and the groups kept per token.</summary>
        public int Groups,
            LimitedGroups;

        /// <summary>1: experts of the groups not kept compete with choice score +0 instead of being left out.</summary>
        public int ZeroDiscarded;

        /// <summary>1: the bias view holds E biases added for choosing.</summary>
        public int HasBias;

        /// <summary>1: the chosen scores are divided by their sum + <see cref="NormEpsilon"/>.</summary>
        public int RouteNorm;

        /// <summary>Added to the sum when normalizing.</summary>
        public float NormEpsilon;

        /// <summary>Multiplies every top score.</summary>
        public float RouteScale;

        /// <summary>Shared words a token takes in <see cref="TopKTiles"/>: its scores and two selection rows.</summary>
        public readonly int WordsPerToken => Pitch(Experts) + (2 * Pitch(K));
    }

    /// <summary>
    /// Group g (one thread per row, <c>Group.DimX</c> rows): softmax of rows <c>[g·DimX, g·DimX + DimX)</c> of the
    /// <c>[rows, columns]</c> logits, <c>exp(z − max) / Σ exp(z − max)</c>, the sum in ascending column order as the
    /// host's; each thread runs the host's sequence over its staged row.
    /// </summary>
    public static void SoftmaxTiles(ArrayView<float> logits, ArrayView<float> scores, int rows, int columns)
    {
        ArrayView<float> tile = SharedMemory.GetDynamic<float>();
        int first = Grid.IdxX * Group.DimX,
            count = Math.Min(Group.DimX, rows - first),
            pitch = Pitch(columns);
        StageRows(logits, first, count, columns, tile, 0, pitch);
        Group.Barrier();
        if (Group.IdxX < count)
            SoftmaxRow(tile, Group.IdxX * pitch, columns);
        Group.Barrier();
        UnstageRows(tile, 0, pitch, first, count, columns, scores);
    }

    /// <summary>
    /// <see cref="SoftmaxTiles"/> then <see cref="TopKTiles"/> on the same staged rows: one launch and one read of
    /// the logits instead of two launches and a write and read of the scores between them. The scores are stored
    /// too (the backward needs them); every value is the two kernels' bit for bit.
    /// </summary>
    public static void SoftmaxTopKTiles(
        ArrayView<float> logits,
        ArrayView<float> scores,
        ArrayView<float> bias,
        int rows,
        TopKChoice c,
        ArrayView<float> topScores,
        ArrayView<long> ids
    )
    {
        ArrayView<float> tile = SharedMemory.GetDynamic<float>();
        int first = Grid.IdxX * Group.DimX,
            count = Math.Min(Group.DimX, rows - first),
            pitch = Pitch(c.Experts);
        StageRows(logits, first, count, c.Experts, tile, 0, pitch);
        Group.Barrier();
        if (Group.IdxX < count)
            SoftmaxRow(tile, Group.IdxX * pitch, c.Experts);
        Group.Barrier();
        UnstageRows(tile, 0, pitch, first, count, c.Experts, scores);
        ChooseStaged(tile, bias, first, count, c, topScores, ids);
    }

    /// <summary>
    /// Group g (one thread per token, staged as in <see cref="SoftmaxTiles"/>): for each of its tokens t the top-k of
    /// <c>scores[t] + bias</c> with ties toward the lower expert id (NaN ranks last), among the experts of the
    /// <see cref="TopKChoice.LimitedGroups"/> best of <see cref="TopKChoice.Groups"/> groups when groups &gt; 0 (with
    /// <see cref="TopKChoice.ZeroDiscarded"/> set, the other experts compete with choice score +0 instead, as
    /// transformers' DeepSeek-V3 router does), written ascending to <c>ids[t]</c>; <c>topScores[t]</c> = the chosen
    /// unbiased scores, divided by their sum + eps with route norm, times the route scale. Shared memory per token:
    /// its scores (<see cref="Pitch"/>(E) words), then a selection row of Pitch(K) words for the choice scores and
    /// one for the ids (their int bits), written to the outputs with coalesced stores at the end.
    /// </summary>
    public static void TopKTiles(
        ArrayView<float> scores,
        ArrayView<float> bias,
        int rows,
        TopKChoice c,
        ArrayView<float> topScores,
        ArrayView<long> ids
    )
    {
        ArrayView<float> tile = SharedMemory.GetDynamic<float>();
        int first = Grid.IdxX * Group.DimX,
            count = Math.Min(Group.DimX, rows - first);
        StageRows(scores, first, count, c.Experts, tile, 0, Pitch(c.Experts));
        Group.Barrier();
        ChooseStaged(tile, bias, first, count, c, topScores, ids);
    }

    /// <summary>
    /// Group g: softmax backward of its rows (as <see cref="SoftmaxTiles"/> stages them),
    /// <c>dz = s ⊙ (ds − Σ s·ds)</c>, the sum in ascending column order. dz is written over the staged ds, so the
    /// outputs may alias the inputs.
    /// </summary>
    public static void SoftmaxBackwardTiles(
        ArrayView<float> scores,
        ArrayView<float> gradScores,
        ArrayView<float> gradLogits,
        int rows,
        int columns
    )
    {
        ArrayView<float> tile = SharedMemory.GetDynamic<float>();
        int first = Grid.IdxX * Group.DimX,
            count = Math.Min(Group.DimX, rows - first),
            pitch = Pitch(columns),
            grads = Group.DimX * pitch;
        StageRows(scores, first, count, columns, tile, 0, pitch);
        StageRows(gradScores, first, count, columns, tile, grads, pitch);
        Group.Barrier();
        if (Group.IdxX < count)
            SoftmaxBackwardRow(tile, Group.IdxX * pitch, grads, columns);
        Group.Barrier();
        UnstageRows(tile, grads, pitch, first, count, columns, gradLogits);
    }

    /// <summary>
    /// Group g: rows of the top-score backward (staged as in <see cref="SoftmaxTiles"/>): zeros, then for each chosen
    /// expert <c>routeScale·dtop</c>, or with route norm
    /// <c>routeScale·(dtop − Σ dtop·s / (Σ s + eps)) / (Σ s + eps)</c> over the chosen unbiased scores s, the sums
    /// in the ids' order as the host's.
    /// </summary>
    public static void TopScoresBackwardTiles(
        ArrayView<float> scores,
        ArrayView<long> ids,
        ArrayView<float> gradTop,
        int rows,
        TopKChoice c,
        ArrayView<float> gradScores
    )
    {
        ArrayView<float> tile = SharedMemory.GetDynamic<float>();
        int first = Grid.IdxX * Group.DimX,
            count = Math.Min(Group.DimX, rows - first),
            pitch = Pitch(c.Experts),
            grads = Group.DimX * pitch;
        if (c.RouteNorm != 0)
            StageRows(scores, first, count, c.Experts, tile, 0, pitch);
        TopScoresBackwardStaged(tile, ids, gradTop, first, count, c, grads);
        Group.Barrier();
        UnstageRows(tile, grads, pitch, first, count, c.Experts, gradScores);
    }

    /// <summary>
    /// <see cref="TopScoresBackwardTiles"/> then <see cref="SoftmaxBackwardTiles"/> on the same staged rows: the
    /// scores are read once and the score gradients never leave shared memory; every value is the two kernels' bit
    /// for bit.
    /// </summary>
    public static void TopScoresSoftmaxBackwardTiles(
        ArrayView<float> scores,
        ArrayView<long> ids,
        ArrayView<float> gradTop,
        int rows,
        TopKChoice c,
        ArrayView<float> gradLogits
    )
    {
        ArrayView<float> tile = SharedMemory.GetDynamic<float>();
        int first = Grid.IdxX * Group.DimX,
            count = Math.Min(Group.DimX, rows - first),
            pitch = Pitch(c.Experts),
            grads = Group.DimX * pitch;
        StageRows(scores, first, count, c.Experts, tile, 0, pitch);
        TopScoresBackwardStaged(tile, ids, gradTop, first, count, c, grads);
        Group.Barrier();
        if (Group.IdxX < count)
            SoftmaxBackwardRow(tile, Group.IdxX * pitch, grads, c.Experts);
        Group.Barrier();
        UnstageRows(tile, grads, pitch, first, count, c.Experts, gradLogits);
    }

    /// <summary>The host's softmax of the staged row at <paramref name="at"/>, in place.</summary>
    private static void SoftmaxRow(ArrayView<float> tile, int at, int columns)
    {
        float max = float.NegativeInfinity;
        for (int e = 0; e < columns; e++)
            max = Math.Max(max, tile[at + e]);
        float sum = 0f;
        for (int e = 0; e < columns; e++)
        {
            float v = MathF.Exp(tile[at + e] - max);
            tile[at + e] = v;
            sum += v;
        }
        for (int e = 0; e < columns; e++)
            tile[at + e] = tile[at + e] / sum;
    }

    /// <summary>The host's softmax backward of the staged row at <paramref name="at"/> (its gradient
    /// <paramref name="grads"/> words further), written over the gradient.</summary>
    private static void SoftmaxBackwardRow(ArrayView<float> tile, int at, int grads, int columns)
    {
        float dot = 0f;
        for (int e = 0; e < columns; e++)
            dot += tile[at + e] * tile[grads + at + e];
        for (int e = 0; e < columns; e++)
            tile[grads + at + e] = tile[at + e] * (tile[grads + at + e] - dot);
    }

    /// <summary>
    /// The top-score backward of the group's tokens into the tile's gradient rows (from word
    /// <paramref name="grads"/>): zeros, then the chosen experts' gradients (reading the staged scores with route
    /// norm). Ends with the group synchronized before the per-token writes, not after.
    /// </summary>
    private static void TopScoresBackwardStaged(
        ArrayView<float> tile,
        ArrayView<long> ids,
        ArrayView<float> gradTop,
        int first,
        int count,
        TopKChoice c,
        int grads
    )
    {
        int k = c.K,
            row = Group.IdxX * Pitch(c.Experts);
        for (int j = Group.IdxX; j < grads; j += Group.DimX)
            tile[grads + j] = 0f;
        Group.Barrier();
        if (Group.IdxX >= count)
            return;
        int at = (first + Group.IdxX) * k;
        if (c.RouteNorm != 0)
        {
            float sum = 0f,
                weighted = 0f;
            for (int j = 0; j < k; j++)
                sum += tile[row + (int)ids[at + j]];
            float denominator = sum + c.NormEpsilon;
            for (int j = 0; j < k; j++)
                weighted += gradTop[at + j] * tile[row + (int)ids[at + j]];
            float mean = weighted / denominator;
            for (int j = 0; j < k; j++)
                tile[grads + row + (int)ids[at + j]] = c.RouteScale * (gradTop[at + j] - mean) / denominator;
        }
        else
        {
            for (int j = 0; j < k; j++)
                tile[grads + row + (int)ids[at + j]] = c.RouteScale * gradTop[at + j];
        }
    }

    /// <summary>
    /// The top-k of the group's staged score rows (see <see cref="TopKTiles"/>), the selection rows after the
    /// scores in the tile, stored to <paramref name="topScores"/> and <paramref name="ids"/>. The caller has
    /// synchronized the group after staging.
    /// </summary>
    private static void ChooseStaged(
        ArrayView<float> tile,
        ArrayView<float> bias,
        int first,
        int count,
        TopKChoice c,
        ArrayView<float> topScores,
        ArrayView<long> ids
    )
    {
        int k = c.K,
            pitch = Pitch(c.Experts),
            kPitch = Pitch(k),
            tops = Group.DimX * pitch,
            chosen = tops + (Group.DimX * kPitch);
        if (Group.IdxX < count)
        {
            int row = Group.IdxX * pitch,
                top = tops + (Group.IdxX * kPitch),
                id = chosen + (Group.IdxX * kPitch);
            SelectTopK(tile, row, bias, c, top, id);
            float sum = 0f;
            for (int j = 0; j < k; j++)
            {
                float s = tile[row + (int)Interop.FloatAsInt(tile[id + j])];
                tile[top + j] = s;
                sum += s;
            }
            float denominator = c.RouteNorm != 0 ? sum + c.NormEpsilon : 1f;
            for (int j = 0; j < k; j++)
                tile[top + j] = tile[top + j] / denominator * c.RouteScale;
        }
        Group.Barrier();
        long to = (long)first * k;
        for (int j = Group.IdxX; j < count * k; j += Group.DimX)
        {
            int r = j / k,
                at = (r * kPitch) + j - (r * k);
            topScores[to + j] = tile[tops + at];
            ids[to + j] = (int)Interop.FloatAsInt(tile[chosen + at]);
        }
    }

    /// <summary>Float32 words of shared memory a row of <paramref name="columns"/> takes in a tile: odd, so the
    /// threads of a warp, each reading the same column of its own row, hit 32 different banks.</summary>
    public static int Pitch(int columns) => columns | 1;

    /// <summary>Copies rows <c>[first, first + count)</c> of a <c>[rows, columns]</c> tensor into
    /// <paramref name="tile"/> from word <paramref name="offset"/>, <paramref name="pitch"/> words per row, the whole
    /// group reading consecutive words.</summary>
    private static void StageRows(
        ArrayView<float> source,
        int first,
        int count,
        int columns,
        ArrayView<float> tile,
        int offset,
        int pitch
    )
    {
        long from = (long)first * columns;
        int n = count * columns;
        for (int j = Group.IdxX; j < n; j += Group.DimX)
        {
            int r = j / columns;
            tile[offset + (r * pitch) + j - (r * columns)] = source[from + j];
        }
    }

    /// <summary>The inverse of <see cref="StageRows"/>: the tile's rows written back to rows
    /// <c>[first, first + count)</c> of <paramref name="destination"/>.</summary>
    private static void UnstageRows(
        ArrayView<float> tile,
        int offset,
        int pitch,
        int first,
        int count,
        int columns,
        ArrayView<float> destination
    )
    {
        long to = (long)first * columns;
        int n = count * columns;
        for (int j = Group.IdxX; j < n; j += Group.DimX)
        {
            int r = j / columns;
            destination[to + j] = tile[offset + (r * pitch) + j - (r * columns)];
        }
    }

    /// <summary>Thread i: <c>1 / (1 + exp(−z))</c>.</summary>
    public static void Sigmoid(Index1D i, ArrayView<float> logits, ArrayView<float> scores) =>
        scores[i] = 1f / (1f + MathF.Exp(-logits[i]));

    /// <summary>
    /// The host's selection for the token whose scores start at <paramref name="row"/> of <paramref name="tile"/>:
    /// one insertion pass in ascending expert order keeping the K best (the choice scores at <paramref name="top"/>,
    /// the ids as int bits at <paramref name="id"/>), then the ids sorted ascending.
    /// </summary>
    private static void SelectTopK(ArrayView<float> tile, int row, ArrayView<float> bias, TopKChoice c, int top, int id)
    {
        int experts = c.Experts,
            k = c.K,
            groups = c.Groups;
        int filled = 0;
        int perGroup = groups > 0 ? experts / groups : experts;
        bool groupEligible = true;
        for (int e = 0; e < experts; e++)
        {
            if (groups > 0 && e % perGroup == 0)
                groupEligible = GroupChosen(
                    tile,
                    bias,
                    c.HasBias,
                    row,
                    perGroup,
                    groups,
                    c.LimitedGroups,
                    e / perGroup
                );
            if (!groupEligible && c.ZeroDiscarded == 0)
                continue;
            float v = groupEligible ? Biased(tile, bias, c.HasBias, row, e) : 0f;
            if (filled == k && !Better(v, tile[top + k - 1]))
                continue;
            int pos = filled < k ? filled++ : k - 1;
            while (pos > 0 && Better(v, tile[top + pos - 1]))
            {
                tile[id + pos] = tile[id + pos - 1];
                tile[top + pos] = tile[top + pos - 1];
                pos--;
            }
            tile[id + pos] = Interop.IntAsFloat((uint)e);
            tile[top + pos] = v;
        }
        // Ascending ids (insertion sort; the ids are distinct).
        for (int j = 1; j < k; j++)
        {
            float bits = tile[id + j];
            int v = (int)Interop.FloatAsInt(bits);
            int p = j;
            while (p > 0 && (int)Interop.FloatAsInt(tile[id + p - 1]) > v)
            {
                tile[id + p] = tile[id + p - 1];
                p--;
            }
            tile[id + p] = bits;
        }
    }

    /// <summary>
    /// Whether group <paramref name="g"/> is among the <paramref name="limited"/> groups the host picks one by one
    /// (best sum of its two best biased scores first, ties toward the lower group id, NaN last): it is when fewer
    /// than <paramref name="limited"/> groups precede it in that order. Recomputing the group scores costs O(G·E)
    /// per token but needs no per-thread memory.
    /// </summary>
    private static bool GroupChosen(
        ArrayView<float> scores,
        ArrayView<float> bias,
        int hasBias,
        int row,
        int perGroup,
        int groups,
        int limited,
        int g
    )
    {
        float mine = GroupScore(scores, bias, hasBias, row, perGroup, g);
        int ahead = 0;
        for (int h = 0; h < groups; h++)
        {
            if (h == g)
                continue;
            float other = GroupScore(scores, bias, hasBias, row, perGroup, h);
            if (Better(other, mine) || (!Better(mine, other) && h < g))
                ahead++;
        }
        return ahead < limited;
    }

    /// <summary>The sum of the two best biased scores of group <paramref name="g"/>, as the host computes it.</summary>
    private static float GroupScore(
        ArrayView<float> scores,
        ArrayView<float> bias,
        int hasBias,
        int row,
        int perGroup,
        int g
    )
    {
        float best = float.NegativeInfinity,
            second = float.NegativeInfinity;
        for (int e = g * perGroup; e < (g + 1) * perGroup; e++)
        {
            float v = Biased(scores, bias, hasBias, row, e);
            if (v > best)
            {
                second = best;
                best = v;
            }
            else if (v > second)
            {
                second = v;
            }
        }
        return best + second;
    }

    private static float Biased(ArrayView<float> scores, ArrayView<float> bias, int hasBias, int row, int e) =>
        hasBias != 0 ? scores[row + e] + bias[e] : scores[row + e];

    /// <summary>True when <paramref name="v"/> ranks strictly above <paramref name="current"/> (NaN ranks
    /// last).</summary>
    private static bool Better(float v, float current) => v > current || (float.IsNaN(current) && !float.IsNaN(v));
}
