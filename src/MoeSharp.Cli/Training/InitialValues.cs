using MoeSharp.Layer;
using MoeSharp.Tensors;

namespace MoeSharp.Cli.Training;

/// <summary>
/// What <c>moe train</c> draws from its seed before the first step, in one order every rank agrees on: the gate
/// [E, D], then W1 [E, H, D], W2 [E, D, H] and W3 [E, H, D] of all E experts, then the shared expert's weights, then
/// the head and the teacher's two vectors. Each rank keeps the gate and the shared expert whole and of the routed
/// experts only its own; the skipped experts are drawn all the same, so an expert's weights, and the draws that follow
/// them, are the same on any world. One draw serves any set of ranks (<see cref="ForRanks"/>): the in-process ranks
/// share one pass through the sequence instead of each walking all of it.
/// </summary>
internal sealed class InitialValues
{
    private readonly List<KeyValuePair<string, Tensor>>?[] _weights;

    private InitialValues(List<KeyValuePair<string, Tensor>>?[] weights, float[] head, float[] a, float[] b)
    {
        _weights = weights;
        Head = head;
        TeacherA = a;
        TeacherB = b;
    }

    /// <summary>The head's initial row [D].</summary>
    public float[] Head { get; }

    /// <summary>The teacher's first vector [D].</summary>
    public float[] TeacherA { get; }

    /// <summary>The teacher's second vector [D].</summary>
    public float[] TeacherB { get; }

    /// <summary>
    /// Draws the values for the ranks of <paramref name="slices"/> (each its first expert and expert count; disjoint),
    /// in one pass: every slice's weights are those a stacked draw of all E experts holds there.
    /// </summary>
    public static InitialValues ForRanks(MoeLayerArgs a, int seed, IReadOnlyList<(int First, int Count)> slices)
    {
        var random = new Random(seed);
        var weights = Weights(a, random, slices);
        int d = a.Dim;
        float[] head = Uniform(random, d, 1 / Math.Sqrt(d));
        float[] teacherA = Uniform(random, d, 1.5 / Math.Sqrt(d));
        float[] teacherB = Uniform(random, d, 1.5 / Math.Sqrt(d));
        return new InitialValues(weights, head, teacherA, teacherB);
    }

    /// <summary>
    /// Slice <paramref name="index"/>'s weights, for <see cref="MoeLayerCheckpoint.LoadLocalExperts"/> (the stacked
    /// <c>experts.*</c> tensors are [E_local, …]), handed over once: this object lets go of them, so the memory is the
    /// rank's alone.
    /// </summary>
    public List<KeyValuePair<string, Tensor>> TakeWeights(int index) =>
        Interlocked.Exchange(ref _weights[index], null)
        ?? throw new InvalidOperationException($"the initial weights of slice {index} were taken already");

    /// <summary>The weights alone, one list per slice, drawn from <paramref name="random"/>.</summary>
    internal static List<KeyValuePair<string, Tensor>>?[] Weights(
        MoeLayerArgs a,
        Random random,
        IReadOnlyList<(int First, int Count)> slices
    )
    {
        int e = a.NumExperts,
            d = a.Dim,
            h = a.Hidden,
            hs = a.SharedHidden;
        foreach (var (first, count) in slices)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(first);
            ArgumentOutOfRangeException.ThrowIfNegative(count);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(first, e - count);
            // [E_local, H, D] must be one array. The layer checks its own (equal) experts before allocating them;
            // this keeps a wrapped int count from reaching the allocation for any other caller.
            MemoryBudget.EnsureTensorFits(
                (long)count * h * d,
                $"the initial weights of this rank's experts, [E_local, H, D] = [{count}, {h}, {d}],"
            );
        }
        var gate = Tensor.FromArray(Uniform(random, e * d, 1 / Math.Sqrt(d)), e, d);
        Tensor[] w1 = Experts(random, e, slices, h, d, 1 / Math.Sqrt(d)),
            w2 = Experts(random, e, slices, d, h, 1 / Math.Sqrt(h)),
            w3 = Experts(random, e, slices, h, d, 1 / Math.Sqrt(d));
        var shared = new List<KeyValuePair<string, Tensor>>();
        if (hs > 0)
        {
            shared.Add(
                new(MoeLayerCheckpoint.SharedW1, Tensor.FromArray(Uniform(random, hs * d, 1 / Math.Sqrt(d)), hs, d))
            );
            shared.Add(
                new(MoeLayerCheckpoint.SharedW2, Tensor.FromArray(Uniform(random, d * hs, 1 / Math.Sqrt(hs)), d, hs))
            );
            shared.Add(
                new(MoeLayerCheckpoint.SharedW3, Tensor.FromArray(Uniform(random, hs * d, 1 / Math.Sqrt(d)), hs, d))
            );
        }
        var weights = new List<KeyValuePair<string, Tensor>>?[slices.Count];
        for (int s = 0; s < slices.Count; s++)
        {
            // The gate and the shared expert are read only (loading copies them into the layer): one tensor serves
            // every slice.
            weights[s] =
            [
                new(MoeLayerCheckpoint.GateWeight, gate),
                new(MoeLayerCheckpoint.ExpertsW1, w1[s]),
                new(MoeLayerCheckpoint.ExpertsW2, w2[s]),
                new(MoeLayerCheckpoint.ExpertsW3, w3[s]),
                .. shared,
            ];
        }
        return weights;
    }

    /// <summary>
    /// Draws the [rows, columns] matrices of all <paramref name="experts"/> in order and keeps each slice's as
    /// [count, rows, columns]: the values a stacked [E, rows, columns] draw holds there.
    /// </summary>
    private static Tensor[] Experts(
        Random random,
        int experts,
        IReadOnlyList<(int First, int Count)> slices,
        int rows,
        int columns,
        double scale
    )
    {
        int matrix = rows * columns;
        var values = new float[slices.Count][];
        for (int s = 0; s < slices.Count; s++)
            values[s] = new float[slices[s].Count * matrix];
        for (int expert = 0; expert < experts; expert++)
        {
            int kept = -1;
            for (int s = 0; s < slices.Count && kept < 0; s++)
            {
                if (expert >= slices[s].First && expert < slices[s].First + slices[s].Count)
                    kept = s;
            }
            if (kept < 0)
            {
                // An expert no slice keeps is drawn all the same: the sequence must advance by as many values.
                for (int i = 0; i < matrix; i++)
                    _ = Draw(random, scale);
                continue;
            }
            Span<float> target = values[kept].AsSpan((expert - slices[kept].First) * matrix, matrix);
            for (int i = 0; i < matrix; i++)
                target[i] = Draw(random, scale);
        }
        var tensors = new Tensor[slices.Count];
        for (int s = 0; s < slices.Count; s++)
            tensors[s] = Tensor.FromArray(values[s], slices[s].Count, rows, columns);
        return tensors;
    }

    /// <summary><paramref name="length"/> values from <see cref="Draw"/>.</summary>
    public static float[] Uniform(Random random, int length, double scale)
    {
        var values = new float[length];
        for (int i = 0; i < length; i++)
            values[i] = Draw(random, scale);
        return values;
    }

    /// <summary>One value uniform in [-scale, scale): every draw of the initial weights, the head, the teacher and the
    /// sequential batches goes through here, so a rank's slice of the experts holds the values of the whole.</summary>
    private static float Draw(Random random, double scale) => (float)((random.NextDouble() * 2 - 1) * scale);
}
