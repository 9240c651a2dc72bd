// Loading an MoE layer's weights from a .safetensors checkpoint and running it.
//
//   dotnet run --project samples/LoadCheckpoint [-- CHECKPOINT.safetensors]
//
// The default checkpoint is a golden layer file of the repository (golden/layer_sigmoid_norm_shared_bias.safetensors):
// its weights carry the checkpoint names (router.gate.weight, experts.w1/w2/w3, shared.w1/w2/w3, router.expert_bias)
// and its metadata the layer's shape, and it holds an input and the output a float64 reference computed for it. The
// sample runs the layer on one rank and on four expert-parallel ranks: the output matches the file within the golden
// tolerance, and the four ranks match the one rank bit for bit.
using System.Globalization;
using MoeSharp.Collectives;
using MoeSharp.Dispatch;
using MoeSharp.Layer;
using MoeSharp.Routing;
using MoeSharp.Tensors;

string path = args.Length > 0 ? args[0] : DefaultCheckpoint();
SafetensorsContent checkpoint = SafetensorsFile.Read(path);
int Meta(string key) => int.Parse(checkpoint.Metadata[key], CultureInfo.InvariantCulture);
var layerArgs = new MoeLayerArgs(Meta("dim"), Meta("hidden"), Meta("experts"), Meta("top_k"))
{
    ScoreFunc = checkpoint.Metadata["score_func"] == "sigmoid" ? ScoreFunction.Sigmoid : ScoreFunction.Softmax,
    RouteNorm = checkpoint.Metadata["route_norm"] == "true",
    RouteScale = float.Parse(checkpoint.Metadata["route_scale"], CultureInfo.InvariantCulture),
    NumExpertGroups = Meta("num_expert_groups"),
    NumLimitedGroups = Meta("num_limited_groups"),
    SharedHidden = Meta("shared_hidden"),
    LoadBalancing = checkpoint.Contains(MoeLayerCheckpoint.ExpertBias), // the router chooses with the bias
};
bool scoreBefore = checkpoint.Metadata["score_before_experts"] == "true";
Tensor x = checkpoint["x"];

// One rank: a layer with every expert, the weights copied in from the file.
using MoeLayer single = MoeLayer.CreateLocal(layerArgs, scoreBefore);
MoeLayerCheckpoint.Load(single, checkpoint);
Tensor y = single.Forward(x);
double error = RelativeError(y, checkpoint["out"]);
Console.WriteLine(
    $"{Path.GetFileName(path)}: {x.Rows} tokens, D = {layerArgs.Dim}, {layerArgs.NumExperts} experts, "
        + $"top-{layerArgs.TopK}; one rank: relative error {error:E2} against the file's output"
);
if (!(error < 1e-4))
    throw new InvalidOperationException($"relative error {error} is not below 1e-4");

// Four expert-parallel ranks, each loading only its own experts from the same file and running the whole sequence.
Tensor[] outputs = InProcessWorld.Run(
    4,
    world =>
    {
        using var groups = ParallelGroups.Create(world, spSize: 1);
        using MoeLayer layer = MoeLayer.Create(
            layerArgs,
            new TokenDispatcherConfig(layerArgs.NumExperts, layerArgs.TopK) { ScoreBeforeExperts = scoreBefore },
            groups
        );
        MoeLayerCheckpoint.Load(layer, checkpoint);
        return layer.Forward(x);
    }
);
bool bitwise = outputs.All(o => o.BitwiseEquals(y));
Console.WriteLine(
    $"four ranks (experts split {layerArgs.NumExperts / 4} per rank): "
        + (bitwise ? "bitwise equal to one rank" : "DIFFERENT from one rank")
);
return bitwise ? 0 : 1;

static double RelativeError(Tensor actual, Tensor expected)
{
    ReadOnlySpan<float> a = actual.AsSpan<float>(),
        e = expected.AsSpan<float>();
    double diff = 0,
        norm = 0;
    for (int i = 0; i < a.Length; i++)
    {
        diff += (double)(a[i] - e[i]) * (a[i] - e[i]);
        norm += (double)e[i] * e[i];
    }
    return Math.Sqrt(diff / norm);
}

// golden/layer_sigmoid_norm_shared_bias.safetensors in the repository that holds this sample.
static string DefaultCheckpoint()
{
    for (DirectoryInfo? dir = new(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
    {
        string candidate = Path.Combine(dir.FullName, "golden", "layer_sigmoid_norm_shared_bias.safetensors");
        if (File.Exists(candidate))
            return candidate;
    }
    throw new FileNotFoundException($"no golden/ folder above {AppContext.BaseDirectory}: pass a checkpoint path");
}
