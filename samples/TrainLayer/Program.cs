// Training an MoE layer: forward, a loss, backward, AdamW, on in-process ranks.
//
//   dotnet run --project samples/TrainLayer
//
// The layer learns to map each token x to a fixed target tanh(2x) (mean squared error). It trains twice from the same
// weights and data, on one rank and on two expert-parallel ranks (each with its own half of every batch, experts 0-3 on
// rank 0 and 4-7 on rank 1), and the two runs print the same losses to the last bit.
using MoeSharp.Collectives;
using MoeSharp.Dispatch;
using MoeSharp.Layer;
using MoeSharp.Tensors;
using MoeSharp.Training;

const int Dim = 16,
    Hidden = 32,
    Experts = 8,
    TopK = 2,
    Tokens = 256,
    Steps = 60,
    Seed = 7;
var layerArgs = new MoeLayerArgs(Dim, Hidden, Experts, TopK)
{
    ScoreFunc = MoeSharp.Routing.ScoreFunction.Sigmoid,
    RouteNorm = true,
};
IReadOnlyList<KeyValuePair<string, Tensor>> initial = InitialWeights(layerArgs, new Random(Seed));

double[] oneRank = InProcessWorld.Run(1, world => Train(world))[0];
double[] twoRanks = InProcessWorld.Run(2, world => Train(world))[0];
for (int step = 0; step < Steps; step += 10)
    Console.WriteLine($"step {step + 1, 3}  loss {oneRank[step]:F6} (1 rank)  {twoRanks[step]:F6} (2 ranks)");
Console.WriteLine($"final loss {oneRank[^1]:F6}, from {oneRank[0]:F6}");
if (!oneRank.SequenceEqual(twoRanks))
    throw new InvalidOperationException("the two layouts' losses differ");
if (!(oneRank[^1] < oneRank[0] / 2))
    throw new InvalidOperationException("the loss did not halve");
Console.WriteLine("the losses on 1 and 2 ranks are bitwise the same");
return 0;

// One rank's training loop; every rank calls it with its world. Returns the loss of every step.
double[] Train(IProcessGroup world)
{
    using var groups = ParallelGroups.Create(world, spSize: 1);
    using MoeLayer layer = MoeLayer.Create(layerArgs, new TokenDispatcherConfig(Experts, TopK), groups);
    MoeLayerCheckpoint.Load(layer, initial); // every rank the same weights; each keeps its own experts
    var optimizer = new AdamW(layer.Parameters, learningRate: 2e-2f, weightDecay: 0f);
    var losses = new double[Steps];
    int rows = Tokens / world.Size,
        first = world.Rank * rows; // this rank's part of every batch
    for (int step = 0; step < Steps; step++)
    {
        Tensor batch = Batch(step);
        Tensor x = Tensor.FromArray(batch.AsSpan<float>().Slice(first * Dim, rows * Dim).ToArray(), rows, Dim);
        using Tensor y = layer.Forward(x); // back to the dispatcher's pool at the end of the step

        // Mean squared error over the whole batch; each token's loss goes into its slot of the global batch, so the sum
        // below adds them in token order on every layout.
        var tokenLoss = new double[Tokens];
        var gradY = Tensor.Uninitialized(DType.Float32, rows, Dim);
        for (int i = 0; i < rows; i++)
        {
            ReadOnlySpan<float> xi = x.Row<float>(i),
                yi = y.Row<float>(i);
            Span<float> gi = gradY.Row<float>(i);
            double sum = 0;
            for (int j = 0; j < Dim; j++)
            {
                float error = yi[j] - MathF.Tanh(2 * xi[j]);
                sum += (double)error * error;
                gi[j] = 2f * error / (Tokens * Dim);
            }
            tokenLoss[first + i] = sum;
        }
        world.AllReduceSum(tokenLoss.AsSpan());
        losses[step] = tokenLoss.Sum() / (Tokens * Dim);

        layer.Backward(gradY); // writes every parameter's gradient
        optimizer.Step();
    }
    return losses;
}

// The batch of a step: [Tokens, Dim], uniform in [-1, 1), the same on every rank.
static Tensor Batch(int step)
{
    var random = new Random(1000 + step);
    var values = new float[Tokens * Dim];
    for (int i = 0; i < values.Length; i++)
        values[i] = (float)(random.NextDouble() * 2 - 1);
    return Tensor.FromArray(values, Tokens, Dim);
}

// Small random weights under the checkpoint's (golden) names.
static IReadOnlyList<KeyValuePair<string, Tensor>> InitialWeights(MoeLayerArgs a, Random random)
{
    Tensor Uniform(double scale, params int[] shape)
    {
        var values = new float[shape.Aggregate(1, (n, d) => n * d)];
        for (int i = 0; i < values.Length; i++)
            values[i] = (float)((random.NextDouble() * 2 - 1) * scale);
        return Tensor.FromArray(values, shape);
    }
    int e = a.NumExperts,
        d = a.Dim,
        h = a.Hidden;
    return
    [
        new(MoeLayerCheckpoint.GateWeight, Uniform(1 / Math.Sqrt(d), e, d)),
        new(MoeLayerCheckpoint.ExpertsW1, Uniform(1 / Math.Sqrt(d), e, h, d)),
        new(MoeLayerCheckpoint.ExpertsW2, Uniform(1 / Math.Sqrt(h), e, d, h)),
        new(MoeLayerCheckpoint.ExpertsW3, Uniform(1 / Math.Sqrt(d), e, h, d)),
    ];
}
