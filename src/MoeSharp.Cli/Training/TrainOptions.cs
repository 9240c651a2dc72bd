using System.Globalization;
using MoeSharp.Cli.Commands;
using MoeSharp.Dispatch;
using MoeSharp.Routing;
using MoeSharp.Verification;

namespace MoeSharp.Cli.Training;

/// <summary>What <c>moe train</c> trains and where.</summary>
/// <param name="Steps">Optimizer steps.</param>
/// <param name="World">Ranks (EP group).</param>
/// <param name="Sp">SP group size (divides World); World/Sp data-parallel groups split each batch.</param>
/// <param name="Layout">Replicated or sharded sequence layout.</param>
/// <param name="Sharding">SP sharding policy.</param>
/// <param name="Tokens">Tokens per step over all data-parallel groups (the global batch).</param>
/// <param name="Dim">The model dimension D: the length of one token's row.</param>
/// <param name="Hidden">H of the routed experts.</param>
/// <param name="Experts">E (a multiple of World).</param>
/// <param name="TopK">The number of experts K each token is routed to.</param>
/// <param name="SharedHidden">Hs of the shared expert (0: none).</param>
/// <param name="ScoreBeforeExperts">Where routing scores multiply.</param>
/// <param name="LearningRate">AdamW learning rate.</param>
/// <param name="BiasUpdateCoeff">Aux-loss-free load-balancing step (0: off).</param>
/// <param name="Seed">Seeds weights, teacher and data.</param>
internal sealed record TrainOptions(
    int Steps = 200,
    int World = 1,
    int Sp = 1,
    SequenceLayout Layout = SequenceLayout.Replicated,
    SpShardingPolicy Sharding = SpShardingPolicy.Balanced,
    int Tokens = 64,
    int Dim = 16,
    int Hidden = 32,
    int Experts = 8,
    int TopK = 2,
    int SharedHidden = 16,
    bool ScoreBeforeExperts = false,
    float LearningRate = 3e-3f,
    float BiasUpdateCoeff = 1e-3f,
    int Seed = 0
)
{
    /// <summary>Where each rank's layer runs: the host (default), CUDA or ILGPU's CPU accelerator.</summary>
    public ComputeOptions Compute { get; init; } = ComputeOptions.Host;

    /// <summary>
    /// On a device: round the layer's product inputs to bfloat16, accumulating in float32 (<c>--gemm-dtype
    /// bfloat16</c>).
    /// </summary>
    public bool BFloat16Products { get; init; }

    /// <summary>
    /// On a device: time every kernel call from step 2 on and report the totals with the last step (<c>--profile</c>).
    /// </summary>
    public bool Profile { get; init; }

    /// <summary>Softmax or sigmoid router scores (<c>--score-func</c>).</summary>
    public ScoreFunction ScoreFunc { get; init; } = ScoreFunction.Softmax;

    /// <summary>Normalize each token's chosen scores to sum to one (<c>--route-norm</c>).</summary>
    public bool RouteNorm { get; init; }

    /// <summary>Factor on the routing weights (<c>--route-scale</c>).</summary>
    public float RouteScale { get; init; } = 1f;

    /// <summary>Expert groups for node-limited routing, 0 off (<c>--expert-groups</c>).</summary>
    public int ExpertGroups { get; init; }

    /// <summary>
    /// Groups each token may route to when <see cref="ExpertGroups"/> &gt; 0 (<c>--limited-groups</c>).
    /// </summary>
    public int LimitedGroups { get; init; }

    /// <summary>
    /// Resume from this checkpoint directory (<c>--load</c>): its step, weights, moments and balancing bias.
    /// </summary>
    public string? LoadFrom { get; init; }

    /// <summary>Write a checkpoint of the last step to this directory (<c>--save</c>).</summary>
    public string? SaveTo { get; init; }

    /// <summary>Whether the layer's dispatcher collects traffic telemetry (<c>--traffic</c>).</summary>
    public bool Traffic { get; init; }

    /// <summary>How each step's batch is drawn (<c>--batch</c>); null: <see cref="BatchOrDefault"/>.</summary>
    public BatchSource? Batch { get; init; }

    /// <summary>
    /// <see cref="Batch"/>, or by default <see cref="BatchSource.Sequential"/> on the host and
    /// <see cref="BatchSource.Counter"/> on a device (which draws it in place).
    /// </summary>
    public BatchSource BatchOrDefault => Batch ?? DefaultBatch(Compute.Device);

    /// <summary>The <c>--batch</c> name of <see cref="BatchOrDefault"/>.</summary>
    public string BatchName => NameOf(BatchOrDefault);

    /// <summary>The batch source of a run on <paramref name="device"/> unless <c>--batch</c> says otherwise.</summary>
    public static BatchSource DefaultBatch(DeviceKind device) =>
        device == DeviceKind.Host ? BatchSource.Sequential : BatchSource.Counter;

    /// <summary>The <c>--batch</c> name of <paramref name="batch"/>.</summary>
    public static string NameOf(BatchSource batch) => batch == BatchSource.Counter ? "counter" : "sequential";

    /// <summary>
    /// The options a checkpoint must share with the run that resumes it for the losses to continue bitwise: the
    /// seed (teacher and batches), the batch, the shapes and the router. Learning rate, bias step and layout may
    /// change.
    /// </summary>
    public IReadOnlyList<KeyValuePair<string, string>> Identity() =>
        [
            new("seed", Seed.ToString(CultureInfo.InvariantCulture)),
            new("tokens", Tokens.ToString(CultureInfo.InvariantCulture)),
            new("dim", Dim.ToString(CultureInfo.InvariantCulture)),
            new("hidden", Hidden.ToString(CultureInfo.InvariantCulture)),
            new("experts", Experts.ToString(CultureInfo.InvariantCulture)),
            new("top-k", TopK.ToString(CultureInfo.InvariantCulture)),
            new("shared-hidden", SharedHidden.ToString(CultureInfo.InvariantCulture)),
            new("score-func", ScoreFunc == ScoreFunction.Sigmoid ? "sigmoid" : "softmax"),
            new("route-norm", RouteNorm ? "true" : "false"),
            new("route-scale", RouteScale.ToString("R", CultureInfo.InvariantCulture)),
            new("expert-groups", ExpertGroups.ToString(CultureInfo.InvariantCulture)),
            new("limited-groups", LimitedGroups.ToString(CultureInfo.InvariantCulture)),
            new("score-before-experts", ScoreBeforeExperts ? "true" : "false"),
            new("batch", BatchName),
        ];
}

/// <summary>One step as rank 0 saw it.</summary>
/// <param name="Step">1-based step.</param>
/// <param name="Loss">Mean squared error over the global batch, before this step's update.</param>
/// <param name="TokensPerExpert">[E] routed tokens this step, summed over ranks.</param>
/// <param name="ExpertBias">[E] bias after this step's update.</param>
/// <param name="Milliseconds">Wall time of the step on rank 0: batch, teacher, forward, loss, backward, AdamW and bias
/// update.</param>
/// <param name="LayerMilliseconds">Of that, the layer's own work on rank 0: forward and backward with the layer's AdamW
/// step, each finished on the device.</param>
/// <param name="Profile">With <see cref="TrainOptions.Profile"/>, on the last step: per kernel, its total seconds and
/// calls over steps 2 to the last.</param>
internal sealed record StepReport(
    int Step,
    double Loss,
    long[] TokensPerExpert,
    float[] ExpertBias,
    double Milliseconds,
    double LayerMilliseconds,
    IReadOnlyList<KernelTime>? Profile = null
)
{
    /// <summary>The step's forward dispatch and combine traffic (<c>--traffic</c>); null when not collected.</summary>
    public MoeSharp.Telemetry.TrafficReport? Traffic { get; init; }
}

/// <summary>One row of a kernel profile.</summary>
/// <param name="Kernel">Which seam and member, e.g. <c>layer GroupedMatMulTransposeB</c>.</param>
/// <param name="Seconds">Total wall time of its calls, device work included.</param>
/// <param name="Calls">How many calls.</param>
internal sealed record KernelTime(string Kernel, double Seconds, int Calls);
