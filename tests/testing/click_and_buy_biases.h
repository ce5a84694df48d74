// What the ESMM tests' planted click-then-conversion streams share (worker/models/
// esmm_model_test.cc, cluster/esmm_train_test.cc): a click bias and a conversion ("buy") bias
// per user and per item, which place an impression's click and purchase probabilities.
#ifndef GRANARY_TESTS_TESTING_CLICK_AND_BUY_BIASES_H_
#define GRANARY_TESTS_TESTING_CLICK_AND_BUY_BIASES_H_

#include <random>
#include <vector>

namespace granary {

struct ClickAndBuyBiases {
  std::vector<float> user_click, item_click;  // [users], [items]
  std::vector<float> user_buy, item_buy;      // [users], [items]
};

// Every bias drawn from N(0, 1) by `rng`, in the order user_click, item_click, user_buy,
// item_buy (so a stream drawn with the same seed stays the same).
inline ClickAndBuyBiases DrawClickAndBuyBiases(int users, int items, std::mt19937* rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  ClickAndBuyBiases biases{std::vector<float>(users), std::vector<float>(items),
                           std::vector<float>(users), std::vector<float>(items)};
  for (std::vector<float>* drawn :
       {&biases.user_click, &biases.item_click, &biases.user_buy, &biases.item_buy}) {
    for (float& bias : *drawn) bias = normal(*rng);
  }
  return biases;
}

}  // namespace granary

#endif  // GRANARY_TESTS_TESTING_CLICK_AND_BUY_BIASES_H_
