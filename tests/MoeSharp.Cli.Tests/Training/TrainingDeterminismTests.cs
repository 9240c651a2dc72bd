using MoeSharp.Cli.Commands;
using MoeSharp.Cli.Training;
using MoeSharp.Dispatch;
using MoeSharp.Verification;

namespace MoeSharp.Tests.Layer;

/// <summary>
/// <c>moe train</c>'s loop: bitwise the same losses on every layout, the loss falls, and with the layer on the CUDA
/// backend's kernels (ILGPU's CPU accelerator) the losses track the host's.
/// </summary>
public sealed class TrainingDeterminismTests
{
    [Fact]
    public void Losses_are_bitwise_identical_on_world_1_and_world_4_sp_2()
    {
        var single = new TrainOptions(Steps: 6, Seed: 7);
        double[] expected = MoeTrainer.Train(single);
        foreach (
            var o in new[]
            {
                single with
                {
                    World = 4,
                    Sp = 2,
                },
                single with
                {
                    World = 4,
                    Sp = 2,
                    Layout = SequenceLayout.Sharded,
                },
                single with
                {
                    World = 2,
                    Sp = 1,
                    Tokens = 64,
                },
            }
        )
        {
            double[] actual = MoeTrainer.Train(o);
            Assert.Equal(
                expected.Select(BitConverter.DoubleToInt64Bits),
                actual.Select(BitConverter.DoubleToInt64Bits)
            );
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void On_the_ilgpu_cpu_backend_the_losses_track_the_host_on_one_and_on_two_ranks(bool counter)
    {
        BatchSource batch = counter ? BatchSource.Counter : BatchSource.Sequential;
        // The host draws the same batches as the device: bitwise for counter batches (drawn on the device there),
        // the same System.Random rows uploaded for sequential ones. Teacher, loss and head gradient run as device
        // kernels (float64 sums, tanh from float32 exp), the layer's router, experts and AdamW too.
        var host = new TrainOptions(Steps: 12, Seed: 3) { Batch = batch };
        double[] expected = MoeTrainer.Train(host);
        var device = ComputeOptions.Parse("ilgpu-cpu", null);
        foreach (
            var o in new[]
            {
                host with
                {
                    Compute = device,
                },
                host with
                {
                    World = 2,
                    Sp = 2,
                    Layout = SequenceLayout.Sharded,
                    Compute = device,
                },
            }
        )
        {
            double[] actual = MoeTrainer.Train(o);
            for (int i = 0; i < expected.Length; i++)
            {
                // Router, experts and AdamW run as device kernels; the products sum without fused multiply-adds there.
                Assert.True(
                    Math.Abs(actual[i] - expected[i]) <= 1e-5 * expected[i],
                    $"step {i + 1}: host {expected[i]:R}, device {actual[i]:R} ({o})"
                );
            }
        }
    }

    [Fact]
    public void A_device_draws_counter_batches_by_default_and_repeats_its_losses_bitwise()
    {
        var o = new TrainOptions(Steps: 3, Seed: 5) { Compute = ComputeOptions.Parse("ilgpu-cpu", null) };
        Assert.Equal(BatchSource.Counter, o.BatchOrDefault);
        Assert.Equal(BatchSource.Sequential, new TrainOptions().BatchOrDefault);
        double[] first = MoeTrainer.Train(o),
            second = MoeTrainer.Train(o);
        Assert.Equal(first.Select(BitConverter.DoubleToInt64Bits), second.Select(BitConverter.DoubleToInt64Bits));
        // Another batch source is another data set: the first step's loss differs.
        Assert.NotEqual(first[0], MoeTrainer.Train(o with { Steps = 1, Batch = BatchSource.Sequential })[0]);
    }

    [Fact]
    public void The_loss_falls()
    {
        double[] losses = MoeTrainer.Train(new TrainOptions(Steps: 60, Seed: 1));
        Assert.True(
            losses.TakeLast(10).Average() < 0.5 * losses.Take(10).Average(),
            $"loss did not fall enough: first {losses.Take(10).Average()}, last {losses.TakeLast(10).Average()}"
        );
    }
}
