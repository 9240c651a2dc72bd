using System.Globalization;
using MoeSharp.Dispatch;
using MoeSharp.Layer;
using MoeSharp.Routing;
using MoeSharp.Tensors;

namespace MoeSharp.Verification;

/// <summary>
/// Replays a golden file of kind <c>moe_layer</c> (<c>shared/golden/README.md</c>, kind 2) through
/// <see cref="MoeLayer"/>: on one rank every tensor within ‖a−e‖/‖e‖ &lt; 1e-4 (ids and counts exactly);
/// then on multi-rank layouts (<see cref="LayerLayout.Variants"/>) the output, routing and grad.x must be
/// bitwise those of the one-rank run and the weight gradients bitwise or within 1e-5. With a device,
/// <see cref="ReplayOnDevice"/> also runs the layer there, within the same tolerance of the file.
/// </summary>
public static class GoldenLayerReplay
{
    /// <summary>Tolerance against the float64 reference.</summary>
    public const double Tolerance = 1e-4;

    /// <summary>Tolerance for weight gradients between layouts when not bitwise.</summary>
    public const double LayoutTolerance = 1e-5;

    /// <summary>What a replay found.</summary>
    /// <param name="MaxRelativeError">Largest relative error against the file over every compared tensor.</param>
    /// <param name="WorstTensor">The tensor with that error.</param>
    /// <param name="Mismatch">Null when everything passed, else the first failure.</param>
    /// <param name="Layouts">Multi-rank layouts checked.</param>
    /// <param name="WeightGradsBitwise">Whether every layout's weight gradients were bitwise those of one rank.</param>
    public sealed record Report(
        double MaxRelativeError,
        string WorstTensor,
        string? Mismatch,
        int Layouts,
        bool WeightGradsBitwise
    );

    /// <summary>True for <c>kind = moe_layer</c>.</summary>
    public static bool Applies(SafetensorsContent file) =>
        file.Metadata.TryGetValue("kind", out string? kind) && kind == "moe_layer";

    /// <summary>
    /// The layer the metadata describes and where scores multiply, checked against the file's tensors
    /// (<see cref="GoldenLayerMetadata"/>) before anything is built from it.
    /// </summary>
    /// <exception cref="InvalidDataException">A metadata entry is missing or malformed, or disagrees with the shape of
    /// a tensor, or a tensor is missing.</exception>
    public static (MoeLayerArgs Args, bool ScoreBeforeExperts) ReadArgs(SafetensorsContent file)
    {
        string func = Text(file, "score_func");
        var sizes = new GoldenLayerMetadata.Sizes(
            Int(file, "dim"),
            Int(file, "hidden"),
            Int(file, "experts"),
            Int(file, "top_k"),
            Int(file, "shared_hidden"),
            Int(file, "num_expert_groups"),
            Int(file, "num_limited_groups")
        );
        // Named by their metadata keys before MoeLayerArgs and the router check them by their parameter names.
        GoldenLayerMetadata.CheckSizes(file.SourceName, sizes);
        var args = new MoeLayerArgs(sizes.Dim, sizes.Hidden, sizes.Experts, sizes.TopK)
        {
            ScoreFunc = func switch
            {
                "softmax" => ScoreFunction.Softmax,
                "sigmoid" => ScoreFunction.Sigmoid,
                _ => throw new InvalidDataException(
                    $"{file.SourceName}: metadata score_func = '{func}' is not softmax or sigmoid"
                ),
            },
            RouteNorm = Bool(file, "route_norm"),
            RouteScale = FiniteFloat(file, "route_scale"),
            NumExpertGroups = sizes.ExpertGroups,
            NumLimitedGroups = sizes.LimitedGroups,
            SharedHidden = sizes.SharedHidden,
            LoadBalancing = file.Contains(MoeLayerCheckpoint.ExpertBias),
        };
        bool before = Bool(file, "score_before_experts");
        GoldenLayerMetadata.Check(file, args);
        return (args, before);
    }

    /// <summary>Replays the file on one rank and on every applicable multi-rank layout.</summary>
    public static Report Replay(SafetensorsContent file, TimeSpan? timeout = null)
    {
        var (args, before) = ReadArgs(file);
        Tensor x = file.Get("x"),
            gradOut = file.Get("grad_out");
        // Every layout's ranks together, up front: a layout that cannot fit is refused before the first one runs.
        foreach (LayerLayout layout in LayerLayout.Variants(args.NumExperts).Prepend(LayerLayout.Single))
            LayerWorldRunner.EnsureMemoryFits(args, layout, x.Rows, null, Describe(file, args, x.Rows));
        LayerWorldRunner.Result single = LayerWorldRunner.Run(
            args,
            before,
            file,
            x,
            gradOut,
            LayerLayout.Single,
            timeout
        );

        var worst = new WorstError();
        string? mismatch = CompareToFile(file, single, "", worst);
        if (mismatch is not null)
            return new Report(worst.Error, worst.Tensor, mismatch, 0, false);

        int layouts = 0;
        bool weightsBitwise = true;
        foreach (LayerLayout layout in LayerLayout.Variants(args.NumExperts))
        {
            LayerWorldRunner.Result r = LayerWorldRunner.Run(args, before, file, x, gradOut, layout, timeout);
            layouts++;
            mismatch =
                TensorComparison.FirstBitwiseMismatch($"out ({layout})", single.Out, r.Out)
                ?? TensorComparison.FirstBitwiseMismatch($"grad.x ({layout})", single.Grads["x"], r.Grads["x"])
                ?? TensorComparison.FirstBitwiseMismatch($"top_scores ({layout})", single.TopScores, r.TopScores)
                ?? TensorComparison.FirstBitwiseMismatch($"expert_ids ({layout})", single.ExpertIds, r.ExpertIds)
                ?? TensorComparison.FirstBitwiseMismatch(
                    $"tokens_per_expert ({layout})",
                    single.TokensPerExpert,
                    r.TokensPerExpert
                );
            foreach (var (name, expected) in single.Grads)
            {
                if (mismatch is not null || name == "x")
                    continue;
                if (TensorComparison.FirstBitwiseMismatch(name, expected, r.Grads[name]) is null)
                    continue;
                weightsBitwise = false;
                double error = TensorComparison.RelativeError(expected, r.Grads[name]);
                if (!(error < LayoutTolerance))
                {
                    mismatch =
                        $"grad.{name} ({layout}): relative error {error:E2} to the one-rank run ≥ {LayoutTolerance:E0}";
                }
            }
            if (mismatch is not null)
                return new Report(worst.Error, worst.Tensor, mismatch, layouts, weightsBitwise);
        }
        return new Report(worst.Error, worst.Tensor, null, layouts, weightsBitwise);
    }

    /// <summary>What a device replay found.</summary>
    /// <param name="MaxRelativeError">Largest relative error against the file over every compared tensor and
    /// layout.</param>
    /// <param name="WorstTensor">The tensor (and layout) with that error.</param>
    /// <param name="Mismatch">Null when everything passed, else the first failure.</param>
    /// <param name="Layouts">The layouts run, e.g. <c>world 1 sp 1 …</c>.</param>
    public sealed record DeviceReport(
        double MaxRelativeError,
        string WorstTensor,
        string? Mismatch,
        IReadOnlyList<string> Layouts
    );

    /// <summary>
    /// Replays the file with the layer on <paramref name="compute"/>'s device (router, experts, gradients there; cuBLAS
    /// products on CUDA): on one rank, and on an expert-parallel world of <paramref name="ranks"/> (SP 2, sharded,
    /// balanced) when E allows. Every tensor must be within <see cref="Tolerance"/> of the float64 reference, the
    /// expert ids and counts exact; across layouts a device run is not bitwise (its products are cuBLAS's).
    /// </summary>
    public static DeviceReport ReplayOnDevice(
        SafetensorsContent file,
        ComputeOptions compute,
        int ranks,
        TimeSpan? timeout = null
    )
    {
        var (args, before) = ReadArgs(file);
        Tensor x = file.Get("x"),
            gradOut = file.Get("grad_out");
        var layouts = new List<LayerLayout> { LayerLayout.Single };
        int world = ranks;
        while (world > 1 && args.NumExperts % world != 0)
            world--;
        if (world > 1)
            layouts.Add(
                new LayerLayout(world, world % 2 == 0 ? 2 : 1, SequenceLayout.Sharded, SpShardingPolicy.Balanced)
            );

        foreach (LayerLayout layout in layouts)
            LayerWorldRunner.EnsureMemoryFits(args, layout, x.Rows, compute, Describe(file, args, x.Rows));
        var worst = new WorstError();
        foreach (LayerLayout layout in layouts)
        {
            LayerWorldRunner.Result r = LayerWorldRunner.Run(args, before, file, x, gradOut, layout, timeout, compute);
            string? mismatch = CompareToFile(file, r, $" ({layout})", worst);
            if (mismatch is not null)
                return new DeviceReport(
                    worst.Error,
                    worst.Tensor,
                    mismatch,
                    layouts.Select(l => l.ToString()).ToList()
                );
        }
        return new DeviceReport(worst.Error, worst.Tensor, null, layouts.Select(l => l.ToString()).ToList());
    }

    /// <summary>
    /// The first disagreement of <paramref name="r"/> with the file — expert ids and counts bitwise, then the output,
    /// the top scores and every gradient the file holds within <see cref="Tolerance"/>, then gradients the file lacks —
    /// or null; <paramref name="worst"/> keeps the largest relative error seen. <paramref name="where"/> follows every
    /// tensor name in messages (e.g. the layout).
    /// </summary>
    private static string? CompareToFile(
        SafetensorsContent file,
        LayerWorldRunner.Result r,
        string where,
        WorstError worst
    )
    {
        string? mismatch =
            TensorComparison.FirstBitwiseMismatch("expert_ids" + where, file.Get("expert_ids"), r.ExpertIds)
            ?? TensorComparison.FirstBitwiseMismatch(
                "tokens_per_expert" + where,
                file.Get("tokens_per_expert"),
                r.TokensPerExpert
            )
            ?? Close("out", r.Out)
            ?? Close("top_scores", r.TopScores);
        foreach (string name in file.Names.Where(n => n.StartsWith("grad.", StringComparison.Ordinal)))
        {
            if (mismatch is not null)
                break;
            mismatch = r.Grads.TryGetValue(name["grad.".Length..], out Tensor? grad)
                ? Close(name, grad)
                : $"{name}{where}: the layer produced no such gradient";
        }
        foreach (string name in r.Grads.Keys)
        {
            mismatch ??= file.Contains("grad." + name) ? null : $"grad.{name}{where}: the file has no expected value";
        }
        return mismatch;

        string? Close(string name, Tensor actual)
        {
            Tensor expected = file.Get(name);
            if (!expected.Shape.SequenceEqual(actual.Shape))
                return $"{name}{where}: expected shape {expected.ShapeString}, actual {actual.ShapeString}";
            double error = TensorComparison.RelativeError(expected, actual);
            worst.Track(name + where, error);
            return error < Tolerance ? null : $"{name}{where}: relative error {error:E2} ≥ {Tolerance:E0}";
        }
    }

    /// <summary>The largest relative error seen so far and the tensor it belongs to.</summary>
    private sealed class WorstError
    {
        public double Error { get; private set; }

        public string Tensor { get; private set; } = "";

        public void Track(string tensor, double error)
        {
            // "Not ≤" so that a NaN error is kept.
            if (error <= Error)
                return;
            Error = error;
            Tensor = tensor;
        }
    }

    /// <summary>Names the file's layer for a memory refusal.</summary>
    private static string Describe(SafetensorsContent file, MoeLayerArgs a, int tokens) =>
        string.Create(
            CultureInfo.InvariantCulture,
            $"the layer of {file.SourceName} (E {a.NumExperts}, D {a.Dim}, H {a.Hidden}, shared H {a.SharedHidden}) "
                + $"replayed on {tokens} tokens"
        );

    private static int Int(SafetensorsContent file, string key)
    {
        string text = Text(file, key);
        return int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int value)
            ? value
            : throw new InvalidDataException($"{file.SourceName}: metadata {key} = '{text}' is not an integer");
    }

    private static float FiniteFloat(SafetensorsContent file, string key)
    {
        string text = Text(file, key);
        return
            float.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out float value)
            && float.IsFinite(value)
            ? value
            : throw new InvalidDataException($"{file.SourceName}: metadata {key} = '{text}' is not a finite number");
    }

    private static bool Bool(SafetensorsContent file, string key) =>
        Text(file, key) switch
        {
            "true" or "True" or "1" => true,
            "false" or "False" or "0" => false,
            var text => throw new InvalidDataException(
                $"{file.SourceName}: metadata {key} = '{text}' is not true or false"
            ),
        };

    private static string Text(SafetensorsContent file, string key) =>
        file.Metadata.TryGetValue(key, out string? text)
            ? text
            : throw new InvalidDataException($"{file.SourceName}: metadata has no '{key}' entry");
}
