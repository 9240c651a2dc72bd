using System.Globalization;
using MoeSharp.Tensors;
using MoeSharp.Verification;

namespace MoeSharp.Tests.Dispatch;

/// <summary>
/// Writes a new golden file of the dispatch kind (shared/golden/README.md, kind 1) from a step-by-step,
/// loop-only implementation of DESIGN.md §1 that shares no code with the dispatcher: pad, stable sort by
/// expert, rank-major receive, expert-major permutation, <c>row · (1 + e/8)</c>, combine in ascending expert
/// id from zero, SP sum.
/// </summary>
internal static class NaiveGolden
{
    private sealed record Entry(int Expert, int SourceRank, int LocalToken, float Score, float[] Row);

    /// <summary>The tensors and metadata of the file; all groups have <paramref name="tokens"/> tokens.</summary>
    public static (Dictionary<string, Tensor> Tensors, Dictionary<string, string> Metadata) Build(
        int world,
        int sp,
        int tokens,
        int dim,
        int experts,
        int topK,
        bool scoreBefore,
        int seed
    )
    {
        var random = new Random(seed);
        int groups = world / sp,
            local = experts / world;
        var inputs = new GroupInputs[groups];
        for (int g = 0; g < groups; g++)
            inputs[g] = RandomInputs.Create(random, tokens, dim, experts, topK, signedScores: true);

        // Steps 1-2 on every rank: padded shard, stable sort of the flattened ids, routed rows.
        int size = (tokens + sp - 1) / sp;
        var sorted = new List<Entry>[world];
        for (int r = 0; r < world; r++)
        {
            GroupInputs g = inputs[r / sp];
            int start = (r % sp) * size;
            var flat = new List<Entry>();
            for (int i = 0; i < size; i++)
            {
                int t = start + i;
                for (int k = 0; k < topK; k++)
                {
                    bool real = t < tokens;
                    int id = real ? (int)g.Ids.AsSpan<long>()[t * topK + k] : 0;
                    float score = real ? g.Scores.AsSpan<float>()[t * topK + k] : 0f;
                    var row = new float[dim];
                    for (int j = 0; j < dim; j++)
                        row[j] = real ? g.X.AsSpan<float>()[t * dim + j] : 0f;
                    if (scoreBefore)
                        for (int j = 0; j < dim; j++)
                            row[j] *= score;
                    flat.Add(new Entry(id, r, i, score, row));
                }
            }
            var order = new List<Entry>();
            for (int e = 0; e < experts; e++)
                order.AddRange(flat.Where(x => x.Expert == e));
            sorted[r] = order;
        }

        var tensors = new Dictionary<string, Tensor>();
        for (int g = 0; g < groups; g++)
        {
            tensors[$"x.g{g}"] = inputs[g].X;
            tensors[$"scores.g{g}"] = inputs[g].Scores;
            tensors[$"ids.g{g}"] = inputs[g].Ids;
        }

        // Steps 3-6: rank q receives, rank-major, then permutes to expert-major; experts run.
        var expertOutput = new Dictionary<Entry, float[]>(ReferenceEqualityComparer.Instance);
        for (int q = 0; q < world; q++)
        {
            var rankMajor = new List<Entry>();
            for (int p = 0; p < world; p++)
            {
                for (int j = 0; j < local; j++)
                    rankMajor.AddRange(sorted[p].Where(x => x.Expert == q * local + j));
            }
            var expertMajor = new List<Entry>();
            var counts = new long[local];
            for (int j = 0; j < local; j++)
            {
                for (int p = 0; p < world; p++)
                {
                    var block = rankMajor.Where(x => x.SourceRank == p && x.Expert == q * local + j).ToList();
                    expertMajor.AddRange(block);
                    counts[j] += block.Count;
                }
            }
            var routed = new float[expertMajor.Count * dim];
            for (int i = 0; i < expertMajor.Count; i++)
            {
                Entry entry = expertMajor[i];
                Array.Copy(entry.Row, 0, routed, i * dim, dim);
                var y = new float[dim];
                for (int j = 0; j < dim; j++)
                    y[j] = entry.Row[j] * (1f + entry.Expert / 8f);
                expertOutput[entry] = y;
            }
            tensors[$"routed.r{q}"] = Tensor.FromArray(routed, expertMajor.Count, dim);
            tensors[$"counts.r{q}"] = Tensor.FromArray(counts, local);
        }

        // Step 7: each rank sums its tokens' terms in expert-sorted order, from zero; pad rows dropped.
        var outputs = new float[world][];
        for (int r = 0; r < world; r++)
        {
            int start = (r % sp) * size;
            var output = new float[tokens * dim];
            for (int i = 0; i < size && start + i < tokens; i++)
            {
                int t = start + i;
                var acc = new float[dim];
                foreach (Entry entry in sorted[r].Where(x => x.LocalToken == i))
                {
                    float[] y = expertOutput[entry];
                    for (int j = 0; j < dim; j++)
                        acc[j] += scoreBefore ? y[j] : y[j] * entry.Score;
                }
                Array.Copy(acc, 0, output, t * dim, dim);
            }
            outputs[r] = output;
            tensors[$"out.r{r}"] = Tensor.FromArray(output, tokens, dim);
        }

        // Step 8: SP sum in SP-rank order.
        for (int g = 0; g < groups; g++)
        {
            var final = new float[tokens * dim];
            for (int s = 0; s < sp; s++)
            {
                for (int i = 0; i < final.Length; i++)
                    final[i] += outputs[g * sp + s][i];
            }
            tensors[$"final.g{g}"] = Tensor.FromArray(final, tokens, dim);
        }

        string Text(int v) => v.ToString(CultureInfo.InvariantCulture);
        var metadata = new Dictionary<string, string>
        {
            ["world"] = Text(world),
            ["ep"] = Text(world),
            ["sp"] = Text(sp),
            ["tokens"] = Text(tokens),
            ["dim"] = Text(dim),
            ["experts"] = Text(experts),
            ["top_k"] = Text(topK),
            ["score_before_experts"] = scoreBefore ? "true" : "false",
            ["seed"] = Text(seed),
            ["dtype"] = "float32",
            ["expert_fn"] = "row * (1 + e/8)",
        };
        return (tensors, metadata);
    }

    /// <summary>
    /// A random configuration from <paramref name="seed"/> (T not a multiple of SP when SP &gt; 1), written to
    /// <paramref name="path"/>.
    /// </summary>
    public static void WriteRandom(string path, int seed)
    {
        var random = new Random(seed);
        int world = random.Next(2, 9);
        int[] divisors = Enumerable.Range(1, world).Where(d => world % d == 0).ToArray();
        int sp = divisors[random.Next(divisors.Length)];
        int tokens = random.Next(world * 3, 120);
        if (sp > 1 && tokens % sp == 0)
            tokens++;
        int experts = world * random.Next(1, 4);
        int topK = random.Next(1, Math.Min(experts, 4) + 1);
        int dim = new[] { 1, 3, 8, 33 }[random.Next(4)];
        var (tensors, metadata) = Build(world, sp, tokens, dim, experts, topK, scoreBefore: random.Next(2) == 0, seed);
        SafetensorsFile.Write(path, tensors, metadata);
    }
}
